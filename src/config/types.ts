import type { ContainerDefaults } from '../domain/container-settings.js';
import type { PullPolicy } from '../domain/image-source.js';

/**
 * The agent's effective configuration, after cyberun-agent.yaml, CYBERUN_* env and flags have been
 * merged (flags > env > file > defaults) and validated. Durations are milliseconds, sizes bytes.
 */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface AgentConfig {
  /** ws(s):// URL of the gateway's agent endpoint; undefined = no tunnel (standalone). */
  gatewayUrl: string | undefined;
  /** Hostname-like id; default os.hostname(). */
  agentId: string;
  /** The `ak-…` key, read from agentKeyFile or CYBERUN_AGENT_KEY; never from a flag. */
  agentKey: string | undefined;
  agentKeyFile: string | undefined;
  /** Extra CA bundle (PEM file) for the gateway's TLS. */
  gatewayCaFile: string | undefined;
  agentLabels: string[];
  /** Where desired state and agent state are persisted. */
  stateDir: string;
  /** Standalone mode: a directory of service definition files (JSON or YAML), watched. */
  servicesDir: string | undefined;
  docker: {
    /** unix socket path, used when host is unset. */
    socketPath: string;
    /** A remote engine (DOCKER_HOST): tcp://, http://, https:// or ssh://; undefined = socketPath. */
    host: string | undefined;
    /**
     * PEM files for TLS to a tcp:// or https:// host (docker.tls.*, or DOCKER_TLS_VERIFY with
     * DOCKER_CERT_PATH's ca.pem, cert.pem, key.pem); all undefined = no TLS for tcp://.
     */
    tls: { caFile: string | undefined; certFile: string | undefined; keyFile: string | undefined };
    /** The user-defined bridge network the agent owns. */
    network: string;
    /** 'ip' = reach replicas at their IP on the network; 'published' = via ports published on the engine host; 'auto' picks. */
    addressing: 'auto' | 'ip' | 'published';
    /** Engine API call timeout. */
    apiTimeoutMs: number;
  };
  volumes: {
    /** Absolute host directories under which host_path may lie. Empty = no host mounts. */
    allowedRoots: string[];
  };
  gpu: {
    /** 'auto' = detect; 'none' = act as a GPU-less host. */
    detect: 'auto' | 'none';
    /** DeviceRequests style: 'device-ids' (driver nvidia, capability gpu) or 'cdi' (nvidia.com/gpu=<id>). */
    deviceStyle: 'device-ids' | 'cdi';
    inventoryRefreshMs: number;
    /** NVIDIA_DRIVER_CAPABILITIES the agent sets on every container (an image's ENV cannot widen it). */
    driverCapabilities: string[];
  };
  health: {
    intervalMs: number;
    timeoutMs: number;
    /** How long a replica may stay `starting` before it is deemed failed and restarted. */
    startBudgetMs: number;
    /** Consecutive failed probes after ready before a replica is `unhealthy` and restarted. */
    failureThreshold: number;
  };
  restart: {
    backoffBaseMs: number;
    backoffCapMs: number;
    /** Running this long resets the backoff. */
    stableAfterMs: number;
    /** This many restarts without a stable period → `failed`. */
    crashLoopLimit: number;
    /** A `failed` replica is tried once more this long after its last backoff; 0 = never. */
    failedRetryMs: number;
    /** SIGTERM → SIGKILL grace when stopping a container. */
    stopTimeoutMs: number;
  };
  pull: {
    /** No progress for this long aborts a pull. */
    stallTimeoutMs: number;
    totalTimeoutMs: number;
    /** Transient pull failures are retried after this, doubling up to backoffCapMs (±10 %). */
    backoffBaseMs: number;
    backoffCapMs: number;
    /** 'auto' = as the kubelet: `:latest` or no tag pulled on every create, others only when missing. */
    policy: PullPolicy;
    /** Registry hosts images may come from ("docker.io", "ghcr.io", "host:5000"); empty = any. */
    allowedRegistries: string[];
  };
  /** Settings every managed container gets (src/runtime/container-mapper.ts, docs/configuration.md). */
  containers: ContainerDefaults;
  reconcile: {
    /** Periodic full relist, the safety net beneath Docker events. */
    resyncIntervalMs: number;
    /** Containers younger than this are never removed as orphans. */
    orphanGraceMs: number;
  };
  proxy: {
    maxBodyBytes: number;
    headersTimeoutMs: number;
    idleTimeoutMs: number;
    /** Allow external_url to resolve to loopback/private/link-local addresses. */
    allowPrivateUpstreams: boolean;
    /** Extra CA bundle (PEM) trusted, besides the system CAs, for external services' https. */
    upstreamCaFile: string | undefined;
  };
  admin: {
    /** Local admin endpoint (status, metrics, healthz): an absolute unix socket path, a loopback host:port, or 'off'; undefined = `<stateDir>/admin.sock`. See src/admin/admin-address.ts. */
    listen: string | undefined;
  };
  shutdown: {
    /** On SIGTERM, how long in-flight proxy streams may take to finish before they are reset. */
    drainTimeoutMs: number;
  };
  logLevel: LogLevel;
  /** Image garbage collection of the engine's data root (src/reconcile/image-gc.ts, docs/engine.md). */
  imageGc: {
    enabled: boolean;
    /** Usage of the data root's filesystem (percent) at which images are removed… */
    highPercent: number;
    /** …until usage is at most this. */
    lowPercent: number;
    /** An image unused for less than this is never removed (it may be about to start). */
    minAgeMs: number;
    /** How often the usage is checked. */
    intervalMs: number;
  };
}

