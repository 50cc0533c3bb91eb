import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { configFileSchema } from '../../../src/config/config-schema.js';
import { CONFIG_KEYS, envNameOf } from '../../../src/config/config-keys.js';
import { formatDuration, formatSize } from '../../../src/config/config-units.js';
import { loadConfig, maskedConfig, parseDuration, parseSize, type LoadedConfig } from '../../../src/config/load-config.js';
import { AgentError, ErrorCodes, isAgentError } from '../../../src/errors.js';
import { tempDir } from '../../helpers/temp-dirs.js';
import { testContainerDefaults } from '../../helpers/container-settings.js';

const KEY = 'ak-7f3c9e2b1a4d6f8e0c2b4a6d8f0e2c4b6a8d0f2e';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cyberun-config-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Opts {
  argv?: string[];
  env?: Record<string, string | undefined>;
  file?: string;
  uid?: number;
  hostname?: string;
}

async function load(opts: Opts = {}): Promise<LoadedConfig> {
  if (opts.file !== undefined) await writeFile(path.join(dir, 'cyberun-agent.yaml'), opts.file);
  return loadConfig({
    argv: opts.argv ?? [],
    env: opts.env ?? {},
    cwd: dir,
    hostname: opts.hostname ?? 'GPU-01',
    uid: opts.uid ?? 1000,
    homedir: '/home/op',
    searchPaths: [path.join(dir, 'cyberun-agent.yaml')],
  });
}

/** The issues of a load that must fail, with the thrown error's full text. */
async function issuesOf(opts: Opts): Promise<{ issues: Array<{ path: string; message: string }>; text: string }> {
  const err = await load(opts).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isAgentError(err, ErrorCodes.CONFIG_INVALID)) throw new Error(`expected CONFIG_INVALID, got ${String(err)}`);
  const issues = err.details?.['issues'] as Array<{ path: string; message: string }>;
  return { issues, text: `${err.message}\n${JSON.stringify(err.details)}` };
}

function issueAt(issues: Array<{ path: string; message: string }>, at: string): string {
  const found = issues.find((i) => i.path === at);
  if (!found) throw new Error(`no issue at ${at}; got ${JSON.stringify(issues)}`);
  return found.message;
}

describe('defaults', () => {
  it('fills every key, with sources "default"', async () => {
    const { config, sources, warnings, configFile } = await load();
    expect(config).toEqual({
      gatewayUrl: undefined,
      agentId: 'gpu-01',
      agentKey: undefined,
      agentKeyFile: undefined,
      gatewayCaFile: undefined,
      agentLabels: [],
      stateDir: '/home/op/.local/state/cyberun-agent',
      servicesDir: undefined,
      docker: {
        socketPath: '/var/run/docker.sock',
        host: undefined,
        tls: { caFile: undefined, certFile: undefined, keyFile: undefined },
        network: 'cyberun',
        addressing: 'auto',
        apiTimeoutMs: 30_000,
      },
      volumes: { allowedRoots: [] },
      gpu: { detect: 'auto', deviceStyle: 'device-ids', inventoryRefreshMs: 60_000, driverCapabilities: ['compute', 'utility'] },
      health: { intervalMs: 5000, timeoutMs: 3000, startBudgetMs: 1_200_000, failureThreshold: 3 },
      restart: { backoffBaseMs: 1000, backoffCapMs: 300_000, stableAfterMs: 600_000, crashLoopLimit: 5, failedRetryMs: 300_000, stopTimeoutMs: 30_000 },
      pull: { stallTimeoutMs: 120_000, totalTimeoutMs: 7_200_000, backoffBaseMs: 10_000, backoffCapMs: 300_000, policy: 'auto', allowedRegistries: [] },
      containers: testContainerDefaults,
      reconcile: { resyncIntervalMs: 30_000, orphanGraceMs: 60_000 },
      proxy: { maxBodyBytes: 10 * 2 ** 30, headersTimeoutMs: 600_000, idleTimeoutMs: 900_000, allowPrivateUpstreams: false },
      admin: { listen: undefined },
      shutdown: { drainTimeoutMs: 30_000 },
      logLevel: 'info',
      imageGc: { enabled: true, highPercent: 85, lowPercent: 80, minAgeMs: 300_000, intervalMs: 60_000 },
    });
    expect(Object.values(sources).every((s) => s === 'default')).toBe(true);
    expect(Object.keys(sources).sort()).toEqual(CONFIG_KEYS.map((k) => k.path).sort());
    expect(warnings).toEqual([]);
    expect(configFile).toBeUndefined();
  });

  it.each([
    [0, {}, '/var/lib/cyberun-agent'],
    [1000, {}, '/home/op/.local/state/cyberun-agent'],
    [1000, { XDG_STATE_HOME: '/xdg/state' }, '/xdg/state/cyberun-agent'],
    [1000, { XDG_STATE_HOME: 'relative' }, '/home/op/.local/state/cyberun-agent'],
    // Under systemd's StateDirectory= (the unit's User= is not root): the directory systemd made.
    [997, { STATE_DIRECTORY: '/var/lib/cyberun-agent' }, '/var/lib/cyberun-agent'],
    [997, { STATE_DIRECTORY: '/var/lib/cyberun-agent:/var/lib/other', XDG_STATE_HOME: '/xdg/state' }, '/var/lib/cyberun-agent'],
    [0, { STATE_DIRECTORY: 'relative' }, '/var/lib/cyberun-agent'],
  ])('state_dir for uid %s with %j is %s', async (uid, env, expected) => {
    expect((await load({ uid, env })).config.stateDir).toBe(expected);
  });

  it('reports a host name that is not a valid agent id, with the fix', async () => {
    const { issues } = await issuesOf({ hostname: 'my_box' });
    expect(issueAt(issues, 'agent_id')).toMatch(/"my_box" is not hostname-like.*\(default: the host name\)/);
    expect((await load({ hostname: 'my_box', argv: ['--agent-id', 'box-1'] })).config.agentId).toBe('box-1');
  });
});

describe('precedence: flags > env > file > defaults', () => {
  const file = 'docker:\n  network: from-file\nhealth:\n  start_budget: 30m\nagent_labels: [file-a, file-b]\n';
  it.each([
    ['file only', {}, [], 'from-file', 1_800_000, ['file-a', 'file-b'], 'file'],
    [
      'env over file',
      { CYBERUN_DOCKER_NETWORK: 'from-env', CYBERUN_HEALTH_START_BUDGET: '45m', CYBERUN_AGENT_LABELS: 'env-a, env-b' },
      [],
      'from-env',
      2_700_000,
      ['env-a', 'env-b'],
      'env',
    ],
    [
      'flags over env',
      { CYBERUN_DOCKER_NETWORK: 'from-env', CYBERUN_HEALTH_START_BUDGET: '45m', CYBERUN_AGENT_LABELS: 'env-a' },
      ['--set', 'docker.network=from-flag', '--set=health.start_budget=1h', '--label', 'flag-a', '--label=flag-b,flag-c'],
      'from-flag',
      3_600_000,
      ['flag-a', 'flag-b', 'flag-c'],
      'flag',
    ],
  ] as const)('%s', async (_name, env, argv, network, budget, labels, source) => {
    const { config, sources } = await load({ file, env, argv: [...argv] });
    expect(config.docker.network).toBe(network);
    expect(config.health.startBudgetMs).toBe(budget);
    expect(config.agentLabels).toEqual(labels);
    expect(sources['docker.network']).toBe(source);
    expect(sources['health.start_budget']).toBe(source);
    expect(sources['agent_labels']).toBe(source);
    expect(sources['health.interval']).toBe('default');
  });

  it('names the exact origin of each value', async () => {
    const { origins, configFile } = await load({
      file,
      env: { CYBERUN_LOG_LEVEL: 'debug', CYBERUN_AGENT_KEY: KEY },
      argv: ['--gateway-url', 'wss://gw.example/agent', '--set', 'pull.stall_timeout=5m'],
    });
    expect(configFile).toBe(path.join(dir, 'cyberun-agent.yaml'));
    expect(origins['docker.network']).toBe(`file ${configFile}`);
    expect(origins['log_level']).toBe('env CYBERUN_LOG_LEVEL');
    expect(origins['gateway_url']).toBe('flag --gateway-url');
    expect(origins['pull.stall_timeout']).toBe('flag --set pull.stall_timeout');
  });

  it('dedicated flags set their keys; the later of a flag and --set wins', async () => {
    const { config } = await load({
      argv: [
        '--agent-id=box-7',
        '--state-dir',
        '/srv/state',
        '--services-dir',
        'services',
        '--docker-socket',
        '/run/docker.sock',
        '--log-level',
        'warn',
        '--set',
        'log_level=error',
      ],
    });
    expect(config.agentId).toBe('box-7');
    expect(config.stateDir).toBe('/srv/state');
    expect(config.servicesDir).toBe(path.join(dir, 'services'));
    expect(config.docker.socketPath).toBe('/run/docker.sock');
    expect(config.logLevel).toBe('error');
  });

  it('DOCKER_HOST is the default for docker.host, below the file and CYBERUN_DOCKER_HOST', async () => {
    const env = { DOCKER_HOST: 'tcp://ambient:2375' };
    expect((await load({ env })).config.docker.host).toBe('tcp://ambient:2375');
    expect((await load({ env })).sources['docker.host']).toBe('env');
    expect((await load({ env, file: 'docker:\n  host: tcp://file:2375\n' })).config.docker.host).toBe('tcp://file:2375');
    expect((await load({ env: { ...env, CYBERUN_DOCKER_HOST: 'tcp://mine:2375' } })).config.docker.host).toBe('tcp://mine:2375');
    expect((await load({ env, argv: ['--docker-host', 'https://flag:2376'] })).config.docker.host).toBe('https://flag:2376');
  });

  it('DOCKER_TLS_VERIFY takes ca.pem, cert.pem and key.pem from DOCKER_CERT_PATH, below the file', async () => {
    const certs = path.join(dir, 'certs');
    await mkdir(certs);
    for (const f of ['ca.pem', 'cert.pem', 'key.pem', 'other-ca.pem']) await writeFile(path.join(certs, f), 'pem');
    const env = { DOCKER_HOST: 'tcp://engine:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs };
    const { config, sources, origins } = await load({ env });
    expect(config.docker.tls).toEqual({ caFile: path.join(certs, 'ca.pem'), certFile: path.join(certs, 'cert.pem'), keyFile: path.join(certs, 'key.pem') });
    expect(sources['docker.tls.ca_file']).toBe('env');
    expect(origins['docker.tls.key_file']).toBe('env DOCKER_TLS_VERIFY (DOCKER_CERT_PATH)');
    const file = `docker:\n  tls:\n    ca_file: ${path.join(certs, 'other-ca.pem')}\n`;
    expect((await load({ env, file })).config.docker.tls.caFile).toBe(path.join(certs, 'other-ca.pem'));
    expect((await load({ env, file })).config.docker.tls.certFile).toBe(path.join(certs, 'cert.pem'));
    // Without DOCKER_TLS_VERIFY, DOCKER_CERT_PATH does nothing (as for the docker CLI).
    expect((await load({ env: { DOCKER_HOST: 'tcp://engine:2375', DOCKER_CERT_PATH: certs }, file: '' })).config.docker.tls).toEqual({ caFile: undefined, certFile: undefined, keyFile: undefined });
  });

  it('docker.tls.*: each file must be readable; a certificate needs its key; TLS needs tcp:// or https://', async () => {
    await writeFile(path.join(dir, 'cert.pem'), 'pem');
    const missing = await issuesOf({ env: { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: path.join(dir, 'nowhere') } });
    expect(issueAt(missing.issues, 'docker.tls.ca_file')).toBe(
      `cannot read ${path.join(dir, 'nowhere', 'ca.pem')} (env DOCKER_TLS_VERIFY (DOCKER_CERT_PATH)): no such file; fix the path or the file's permissions`,
    );
    expect(missing.issues.map((i) => i.path)).toEqual(['docker.tls.ca_file', 'docker.tls.cert_file', 'docker.tls.key_file']);
    const alone = await issuesOf({ env: { CYBERUN_DOCKER_TLS_CERT_FILE: path.join(dir, 'cert.pem') } });
    expect(issueAt(alone.issues, 'docker.tls.key_file')).toMatch(/^docker\.tls\.cert_file is set \(env CYBERUN_DOCKER_TLS_CERT_FILE\) but docker\.tls\.key_file is not; .*set both, or neither$/);
    const plain = await issuesOf({ argv: ['--docker-host', 'http://engine:2375', '--set', `docker.tls.ca_file=${path.join(dir, 'cert.pem')}`] });
    expect(issueAt(plain.issues, 'docker.host')).toMatch(/^"http:\/\/engine:2375" \(flag --docker-host\) does not use TLS, but docker\.tls\.ca_file is set \(flag --set docker\.tls\.ca_file\); write tcp:\/\/ or https:\/\//);
  });

  it('ssh:// hosts are accepted, with a user name', async () => {
    expect((await load({ env: { DOCKER_HOST: 'ssh://deploy@gpu-01:2222' } })).config.docker.host).toBe('ssh://deploy@gpu-01:2222');
  });

  it('a unix:// docker host becomes the socket path', async () => {
    const { config, origins } = await load({ env: { DOCKER_HOST: 'unix:///run/user/1000/docker.sock' } });
    expect(config.docker).toMatchObject({ host: undefined, socketPath: '/run/user/1000/docker.sock' });
    expect(origins['docker.socket']).toBe('env DOCKER_HOST');
  });

  it('an empty env var is unset; null or empty keys in the file are unset', async () => {
    const { config } = await load({ env: { CYBERUN_DOCKER_NETWORK: '' }, file: 'docker:\n  network:\ngateway_url: null\nhealth:\n' });
    expect(config.docker.network).toBe('cyberun');
    expect(config.gatewayUrl).toBeUndefined();
  });
});

describe('config file location', () => {
  it('--config beats CYBERUN_CONFIG beats the search path', async () => {
    await writeFile(path.join(dir, 'a.yaml'), 'docker:\n  network: via-flag\n');
    await writeFile(path.join(dir, 'b.yaml'), 'docker:\n  network: via-env\n');
    const file = 'docker:\n  network: via-search\n';
    expect((await load({ file })).config.docker.network).toBe('via-search');
    expect((await load({ file, env: { CYBERUN_CONFIG: 'b.yaml' } })).config.docker.network).toBe('via-env');
    expect((await load({ file, env: { CYBERUN_CONFIG: 'b.yaml' }, argv: ['--config', 'a.yaml'] })).config.docker.network).toBe('via-flag');
  });

  it('a named file that is missing is an error naming it; a missing search path is not', async () => {
    const { issues } = await issuesOf({ argv: ['--config', 'nope.yaml'] });
    expect(issueAt(issues, 'config')).toContain(`${path.join(dir, 'nope.yaml')}: no such file (flag --config)`);
    await expect(load()).resolves.toBeDefined();
  });

  it('reports YAML syntax errors with a position and without quoting the file', async () => {
    const { issues, text } = await issuesOf({ file: `gateway_url: wss://x\n  agent_key_file: ${KEY}\n: : :\n` });
    expect(issueAt(issues, 'config')).toMatch(/is not valid YAML at line \d+, column \d+/);
    expect(text).not.toContain(KEY);
  });

  it('refuses a file that is not a mapping', async () => {
    const { issues } = await issuesOf({ file: '- a\n- b\n' });
    expect(issueAt(issues, 'config')).toContain('not a mapping');
  });

  it('resolves relative paths in the file against its directory, and in flags against the cwd', async () => {
    await mkdir(path.join(dir, 'etc'));
    await writeFile(path.join(dir, 'etc', 'agent.yaml'), 'state_dir: state\nservices_dir: ~/svc\n');
    await writeFile(path.join(dir, 'ca.pem'), 'pem');
    const { config } = await load({ argv: ['--config', 'etc/agent.yaml', '--set', 'gateway_ca_file=ca.pem'] });
    expect(config.gatewayCaFile).toBe(path.join(dir, 'ca.pem'));
    expect(config.stateDir).toBe(path.join(dir, 'etc', 'state'));
    expect(config.servicesDir).toBe('/home/op/svc');
  });

  it('takes proxy.upstream_ca_file from file or env, resolved like every path, and refuses a missing one by name', async () => {
    await writeFile(path.join(dir, 'upstream-ca.pem'), 'pem');
    const fromFile = await load({ file: 'proxy:\n  upstream_ca_file: upstream-ca.pem\n' });
    expect(fromFile.config.proxy.upstreamCaFile).toBe(path.join(dir, 'upstream-ca.pem'));
    const fromEnv = await load({ env: { CYBERUN_PROXY_UPSTREAM_CA_FILE: path.join(dir, 'upstream-ca.pem') } });
    expect(fromEnv.config.proxy.upstreamCaFile).toBe(path.join(dir, 'upstream-ca.pem'));
    const { issues } = await issuesOf({ file: 'proxy:\n  upstream_ca_file: /nonexistent/ca.pem\n' });
    expect(issueAt(issues, 'proxy.upstream_ca_file')).toContain('/nonexistent/ca.pem');
  });
});

describe('durations and sizes', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1500],
    ['1500', 1500],
    [2500, 2500],
    [0, 0],
  ] as const)('parseDuration(%j) = %d', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
    expect(parseDuration(formatDuration(ms))).toBe(ms);
  });

  it.each(['5 minutes', '5M', '-3s', '1.5', 'ms', '', '30 s', '25d'])('parseDuration(%j) throws CONFIG_INVALID', (input) => {
    expect(() => parseDuration(input)).toThrow(AgentError);
  });

  it.each([
    ['512MiB', 512 * 2 ** 20],
    ['10GiB', 10 * 2 ** 30],
    ['10gib', 10 * 2 ** 30],
    ['500MB', 500e6],
    ['1.5KiB', 1536],
    ['4096', 4096],
    ['12B', 12],
    [1024, 1024],
  ] as const)('parseSize(%j) = %d', (input, bytes) => {
    expect(parseSize(input)).toBe(bytes);
    expect(parseSize(formatSize(bytes))).toBe(bytes);
  });

  it.each(['10 gigs', '10G', '-1MiB', 'GiB', 1.5])('parseSize(%j) throws', (input) => {
    expect(() => parseSize(input)).toThrow(AgentError);
  });

  it('reads durations and sizes from every layer', async () => {
    const { config } = await load({
      file: 'health:\n  interval: 2500\n  timeout: "2s"\nproxy:\n  max_body: 512MiB\n',
      env: { CYBERUN_PULL_STALL_TIMEOUT: '90s', CYBERUN_PROXY_MAX_BODY: '1GiB' },
      argv: ['--set', 'restart.backoff_cap=2m'],
    });
    expect(config.health).toMatchObject({ intervalMs: 2500, timeoutMs: 2000 });
    expect(config.proxy.maxBodyBytes).toBe(2 ** 30);
    expect(config.pull.stallTimeoutMs).toBe(90_000);
    expect(config.restart.backoffCapMs).toBe(120_000);
  });

  it('warns about a bare number that was probably meant as seconds', async () => {
    const { config, warnings } = await load({ file: 'restart:\n  backoff_base: 500\nhealth:\n  interval: 5000\n' });
    expect(config.restart.backoffBaseMs).toBe(500);
    expect(warnings).toEqual([expect.stringMatching(/^restart\.backoff_base: 500 .* read as 500 milliseconds; write "500ms" .* "500s"/)]);
    const { issues } = await issuesOf({ file: 'health:\n  timeout: 3\n' });
    expect(issueAt(issues, 'health.timeout')).toMatch(/too short; use at least 100ms \(a bare number is milliseconds; write "3s" for seconds\)/);
  });

  it('takes restart.failed_retry 0 as never, from the file or the environment', async () => {
    expect((await load({ file: 'restart:\n  failed_retry: 0\n' })).config.restart.failedRetryMs).toBe(0);
    expect((await load({ env: { CYBERUN_RESTART_FAILED_RETRY: '2m' } })).config.restart.failedRetryMs).toBe(120_000);
  });

  it('reads ints and booleans from strings (env, flags, YAML "yes")', async () => {
    const { config } = await load({
      file: 'proxy:\n  allow_private_upstreams: yes\n',
      env: { CYBERUN_HEALTH_FAILURE_THRESHOLD: '7' },
      argv: ['--set', 'restart.crash_loop_limit=9'],
    });
    expect(config.proxy.allowPrivateUpstreams).toBe(true);
    expect(config.health.failureThreshold).toBe(7);
    expect(config.restart.crashLoopLimit).toBe(9);
  });
});

describe('values', () => {
  it.each([
    ['gateway_url: https://gw.example', 'gateway_url', /not a WebSocket URL; use wss:\/\//],
    ['gateway_url: "wss://user:pw@gw.example"', 'gateway_url', /carries credentials/],
    ['agent_labels: [gpu, Fast, "a b"]', 'agent_labels', /"Fast", "a b" are not valid labels/],
    ['agent_id: Box_1', 'agent_id', /not hostname-like/],
    ['volumes:\n  allowed_roots: [data]', 'volumes.allowed_roots', /"data" is not absolute/],
    ['volumes:\n  allowed_roots: ["/data/../etc"]', 'volumes.allowed_roots', /"\." or "\.\." segments/],
    ['volumes:\n  allowed_roots: ["/"]', 'volumes.allowed_roots', /would expose the host system/],
    ['volumes:\n  allowed_roots: ["/etc/models"]', 'volumes.allowed_roots', /would expose the host system/],
    ['docker:\n  network: host', 'docker.network', /built-in networks/],
    ['docker:\n  host: ftp://box', 'docker.host', /not a Docker host/],
    ['docker:\n  host: tcp://box:2375/v1.41', 'docker.host', /has a path/],
    ['docker:\n  host: tcp://me:secret@box:2375', 'docker.host', /carries credentials/],
    ['docker:\n  addressing: bridge', 'docker.addressing', /use one of auto, ip, published/],
    ['gpu:\n  device_style: nvidia', 'gpu.device_style', /use one of device-ids, cdi/],
    ['health:\n  failure_threshold: 0', 'health.failure_threshold', /out of range; use a whole number from 1 to 100/],
    ['health:\n  interval: 10ms', 'health.interval', /too short; use at least 100ms/],
    ['restart:\n  failed_retry: 500ms', 'restart.failed_retry', /too short; use at least 1s \(or 0 for never\)/],
    ['proxy:\n  max_body: 0', 'proxy.max_body', /zero/],
    ['proxy:\n  allow_private_upstreams: maybe', 'proxy.allow_private_upstreams', /not a boolean/],
    ['log_level: verbose', 'log_level', /use one of fatal, error, warn, info, debug, trace, silent/],
    ['docker: 5', 'docker', /expected a mapping of docker\.\* keys, got 5/],
    ['restart:\n  backoff_base: 10m', 'restart.backoff_base', /10m .* is longer than restart.backoff_cap 5m \(default\)/],
    ['pull:\n  stall_timeout: 3h', 'pull.stall_timeout', /longer than pull.total_timeout 2h/],
    ['health:\n  timeout: 10s', 'health.timeout', /probes would overlap/],
    ['image_gc:\n  high_percent: 101', 'image_gc.high_percent', /out of range; use a whole number from 0 to 100/],
    ['image_gc:\n  low_percent: 90', 'image_gc.low_percent', /^90 \(.*\) is above image_gc.high_percent 85 \(default\); collection stops at low_percent, so lower low_percent or raise high_percent$/],
    ['image_gc:\n  enabled: sometimes', 'image_gc.enabled', /not a boolean/],
    ['containers:\n  cap_drop: [NET_RAW, "net raw"]', 'containers.cap_drop', /"NET RAW" is not a capability name; write names such as NET_RAW/],
    ['containers:\n  pids_limit: -1', 'containers.pids_limit', /out of range; use a whole number from 0 to 4194304/],
    ['containers:\n  memory_limit: 1MiB', 'containers.memory_limit', /too small; use at least 6MiB .*or 0 for no limit/],
    ['containers:\n  runtime: "nvidia runtime"', 'containers.runtime', /not a runtime name/],
    ['containers:\n  gpu:\n    memlock: lots', 'containers.gpu.memlock', /not a size/],
    ['gpu:\n  driver_capabilities: [compute, everything]', 'gpu.driver_capabilities', /"everything" is not an NVIDIA driver capability; use some of compute/],
    ['pull:\n  policy: sometimes', 'pull.policy', /use one of auto, always, if-not-present, never/],
    ['pull:\n  allowed_registries: ["https://ghcr.io"]', 'pull.allowed_registries', /is not a registry host; write host\[:port\] without a scheme/],
    ['pull:\n  backoff_base: 10m', 'pull.backoff_base', /longer than pull.backoff_cap 5m/],
  ])('%j → %s', async (file, at, message) => {
    const { issues } = await issuesOf({ file: `${file}\n` });
    expect(issueAt(issues, at)).toMatch(message);
  });

  it('reads image_gc from file and env; 0/0 thresholds and no minimum age are allowed (collect at once)', async () => {
    const { config } = await load({ file: 'image_gc:\n  high_percent: 0\n  low_percent: 0\n  min_age: 0\n', env: { CYBERUN_IMAGE_GC_INTERVAL: '2s', CYBERUN_IMAGE_GC_ENABLED: 'false' } });
    expect(config.imageGc).toEqual({ enabled: false, highPercent: 0, lowPercent: 0, minAgeMs: 0, intervalMs: 2000 });
  });

  it('reads container defaults, driver capabilities and registries in the spellings an operator writes', async () => {
    const { config } = await load({
      file: 'containers:\n  cap_drop: [cap_net_raw, SYS_ADMIN]\n  pids_limit: 0\n  memory_limit: 16GiB\n  gpu:\n    memlock: -1\n    stack: unlimited\npull:\n  allowed_registries: [GHCR.io, index.docker.io, "127.0.0.1:5000"]\n',
      env: { CYBERUN_GPU_DRIVER_CAPABILITIES: 'compute,video' },
    });
    expect(config.containers).toMatchObject({ capDrop: ['NET_RAW', 'SYS_ADMIN'], pidsLimit: 0, memoryLimitBytes: 16 * 2 ** 30, gpu: { memlockBytes: -1, stackBytes: -1 } });
    expect(config.gpu.driverCapabilities).toEqual(['compute', 'video']);
    expect(config.pull.allowedRegistries).toEqual(['ghcr.io', 'docker.io', '127.0.0.1:5000']);
  });

  it('normalizes and dedupes allowed roots and labels', async () => {
    const { config } = await load({ file: 'volumes:\n  allowed_roots: ["/data/models/", "//data//models", /srv]\nagent_labels: [a, b, a]\n' });
    expect(config.volumes.allowedRoots).toEqual(['/data/models', '/srv']);
    expect(config.agentLabels).toEqual(['a', 'b']);
  });

  it('warns when ws:// leaves the host', async () => {
    const local = await load({ argv: ['--gateway-url', 'ws://127.0.0.1:8080/agent'], env: { CYBERUN_AGENT_KEY: KEY } });
    expect(local.warnings).toEqual([]);
    const remote = await load({ argv: ['--gateway-url', 'ws://gw.example/agent'], env: { CYBERUN_AGENT_KEY: KEY } });
    expect(remote.warnings).toEqual([expect.stringContaining('unencrypted; use wss://')]);
  });
});

describe('unknown keys, env vars and flags', () => {
  it('names the full key path in the file, with a suggestion', async () => {
    const { issues } = await issuesOf({ file: 'docker:\n  sockett: /x\nnetwork: cyberun\nhealth:\n  start_budgett: 5m\nfoo: 1\n' });
    expect(issueAt(issues, 'docker.sockett')).toBe(`unknown key; did you mean "socket"? (file ${path.join(dir, 'cyberun-agent.yaml')})`);
    expect(issueAt(issues, 'network')).toMatch(/^unknown key; did you mean "docker.network"\?/);
    expect(issueAt(issues, 'health.start_budgett')).toMatch(/did you mean "start_budget"/);
    expect(issueAt(issues, 'foo')).toMatch(/^unknown key \(file /);
  });

  it('rejects unknown CYBERUN_* env vars, but not the key, the config file, or names owned elsewhere', async () => {
    const { issues } = await issuesOf({ env: { CYBERUN_GATEWAY_URLL: 'wss://x', CYBERUN_NOPE: '', PATH: '/bin' } });
    expect(issues.map((i) => i.path)).toEqual(['CYBERUN_GATEWAY_URLL', 'CYBERUN_NOPE']);
    expect(issueAt(issues, 'CYBERUN_GATEWAY_URLL')).toMatch(/^unknown environment variable; did you mean "CYBERUN_GATEWAY_URL"\?/);
    const ok = await loadConfig({
      argv: [],
      env: { CYBERUN_AGENT_KEY: KEY, CYBERUN_CONFIG: '', CYBERUN_GATEWAY_PORT: '8080' },
      cwd: dir,
      hostname: 'h',
      searchPaths: [],
      extraEnvKeys: ['CYBERUN_GATEWAY_PORT'],
    });
    expect(ok.config.agentKey).toBe(KEY);
  });

  it('rejects unknown flags, unknown --set keys, sections and stray arguments', async () => {
    const { issues } = await issuesOf({
      argv: ['--gatway-url', 'wss://x', '--set', 'docker.sockett=/x', '--set', 'docker=1', '--set', 'novalue', 'stray', '--log-level'],
    });
    expect(issueAt(issues, '--gatway-url')).toMatch(/^unknown flag; did you mean "--gateway-url"\?/);
    expect(issueAt(issues, 'docker.sockett')).toMatch(/^unknown key; did you mean "socket"\? \(flag --set\)/);
    expect(issueAt(issues, 'docker')).toMatch(/is a section, not a key; set one of docker.socket, docker.host/);
    expect(issueAt(issues, '--set')).toMatch(/has no "="/);
    expect(issueAt(issues, 'argv')).toMatch(/unexpected argument "stray"/);
    expect(issueAt(issues, '--log-level')).toMatch(/needs a value/);
    expect(issues).toHaveLength(6);
  });
});

describe('all problems at once', () => {
  it('collects problems from every layer into one CONFIG_INVALID, each naming its source', async () => {
    const file = 'health:\n  start_budget: 5 minutes\ndocker:\n  sockett: /x\n';
    const { issues, text } = await issuesOf({
      file,
      env: { CYBERUN_HEALTH_FAILURE_THRESHOLD: 'three', CYBERUN_DOCKR_NETWORK: 'x' },
      argv: ['--log-level', 'loud', '--bogus'],
    });
    const filePath = path.join(dir, 'cyberun-agent.yaml');
    expect(issues).toHaveLength(6);
    expect(issueAt(issues, 'health.start_budget')).toMatch(new RegExp(`^"5 minutes" is not a duration; .*\\(file ${filePath}\\)$`));
    expect(issueAt(issues, 'docker.sockett')).toContain(`(file ${filePath})`);
    expect(issueAt(issues, 'health.failure_threshold')).toMatch(/^"three" is not an integer; .* \(env CYBERUN_HEALTH_FAILURE_THRESHOLD\)$/);
    expect(issueAt(issues, 'CYBERUN_DOCKR_NETWORK')).toMatch(/did you mean "CYBERUN_DOCKER_NETWORK"/);
    expect(issueAt(issues, 'log_level')).toMatch(/^"loud" is not allowed; use one of .* \(flag --log-level\)$/);
    expect(issueAt(issues, '--bogus')).toMatch(/^unknown flag/);
    expect(text).toMatch(/^invalid configuration \(6 problems\):\n {2}\S+: /);
  });

  it('reports a bad file value even where env overrides it', async () => {
    const { issues } = await issuesOf({ file: 'health:\n  interval: soon\n', env: { CYBERUN_HEALTH_INTERVAL: '5s' } });
    expect(issueAt(issues, 'health.interval')).toMatch(/"soon" .*\(file /);
  });
});

describe('the agent key', () => {
  async function keyFile(content: string, mode = 0o600): Promise<string> {
    const file = path.join(dir, 'agent.key');
    await writeFile(file, content);
    await chmod(file, mode);
    return file;
  }

  it('is read from agent_key_file, trimmed, without a warning at mode 600', async () => {
    const file = await keyFile(`${KEY}\n`);
    const { config, sources, origins, warnings } = await load({ file: `agent_key_file: ${file}\n` });
    expect(config.agentKey).toBe(KEY);
    expect(config.agentKeyFile).toBe(file);
    expect(sources['agent_key']).toBe('file');
    expect(origins['agent_key']).toContain(file);
    expect(warnings).toEqual([]);
  });

  it('warns when the key file is readable by its group', async () => {
    const file = await keyFile(KEY, 0o640);
    const { config, warnings } = await load({ argv: ['--agent-key-file', file] });
    expect(config.agentKey).toBe(KEY);
    expect(warnings).toEqual([`agent_key_file: ${file} is readable by its group (mode 0640); run: chmod 600 ${file}`]);
  });

  it.each([0o644, 0o604, 0o660, 0o666])('refuses a key file other users can read or change (mode %o), as OpenSSH does', async (mode) => {
    const file = await keyFile(KEY, mode);
    const { issues } = await issuesOf({ argv: ['--agent-key-file', file] });
    expect(issueAt(issues, 'agent_key_file')).toContain(`is refused: other users can read or change it (mode 0${mode.toString(8)}); run: chmod 600 ${file}`);
  });

  it.each([
    ['missing', undefined, /cannot read agent key file .*missing\.key .*no such file/],
    ['empty', '  \n', /is empty/],
    ['two lines', 'ak-one\nak-two\n', /whitespace or non-printable/],
  ])('reports a %s key file, naming it', async (_name, content, message) => {
    const file = content === undefined ? path.join(dir, 'missing.key') : await keyFile(content);
    const { issues } = await issuesOf({ env: { CYBERUN_AGENT_KEY_FILE: file } });
    expect(issueAt(issues, 'agent_key_file')).toMatch(message);
  });

  it('CYBERUN_AGENT_KEY beats a key file named in the file; a flag-named key file beats it', async () => {
    const file = await keyFile('ak-from-file-000');
    const fromEnv = await load({ file: `agent_key_file: ${file}\n`, env: { CYBERUN_AGENT_KEY: KEY } });
    expect(fromEnv.config.agentKey).toBe(KEY);
    expect(fromEnv.sources['agent_key']).toBe('env');
    const fromFlag = await load({ argv: ['--set', `agent_key_file=${file}`], env: { CYBERUN_AGENT_KEY: KEY } });
    expect(fromFlag.config.agentKey).toBe('ak-from-file-000');
  });

  it('refuses CYBERUN_AGENT_KEY together with CYBERUN_AGENT_KEY_FILE', async () => {
    const file = await keyFile(KEY);
    const { issues, text } = await issuesOf({ env: { CYBERUN_AGENT_KEY: KEY, CYBERUN_AGENT_KEY_FILE: file } });
    expect(issueAt(issues, 'agent_key')).toMatch(/set only one/);
    expect(text).not.toContain(KEY);
  });

  it('is required when gateway_url is set', async () => {
    const { issues } = await issuesOf({ env: { CYBERUN_GATEWAY_URL: 'wss://gw.example/agent' } });
    expect(issueAt(issues, 'agent_key')).toMatch(/gateway_url is set \(env CYBERUN_GATEWAY_URL\) but no agent key .*agent_key_file.*CYBERUN_AGENT_KEY/);
  });

  it.each([[['--agent-key', KEY]], [[`--agent-key=${KEY}`]], [['--set', `agent_key=${KEY}`]]])(
    'is refused on the command line: %j, without echoing it',
    async (argv) => {
      const { issues, text } = await issuesOf({ argv });
      expect(issues).toHaveLength(1);
      expect(issues[0]?.message).toMatch(/^refused: .*`ps`.*agent_key_file.*CYBERUN_AGENT_KEY/);
      expect(text).not.toContain(KEY);
      expect(text).not.toContain(KEY.slice(3));
    },
  );

  it('is refused as a value in the file, without echoing it', async () => {
    const { issues, text } = await issuesOf({ file: `agent_key: ${KEY}\n` });
    expect(issueAt(issues, 'agent_key')).toMatch(/^refused in .*agent_key_file.*CYBERUN_AGENT_KEY/);
    expect(issues).toHaveLength(1);
    expect(text).not.toContain(KEY.slice(3));
  });

  it.each([
    ['a misplaced key in an unknown env var', { env: { CYBERUN_AGENT_KEYS: KEY } }, KEY.slice(3)],
    ['a key as a bad value of another key', { env: { CYBERUN_HEALTH_INTERVAL: KEY } }, KEY.slice(3)],
    ['a key as a stray argument', { argv: [KEY] }, KEY.slice(3)],
    ['a key as a file value', { file: `gateway_url: ${KEY}\n` }, KEY.slice(3)],
    ['a key pasted as agent_key_file', { env: { CYBERUN_AGENT_KEY_FILE: KEY } }, KEY.slice(3)],
    ['the real key (any format), echoed by a bad value', { env: { CYBERUN_AGENT_KEY: 'S3cret-Value', CYBERUN_LOG_LEVEL: 'S3cret-Value' } }, 'S3cret'],
  ])('never appears in error messages: %s', async (_name, opts, secret) => {
    const { text } = await issuesOf(opts);
    expect(text).not.toContain(secret);
  });

  it('is masked in maskedConfig, revealing only that it is set', async () => {
    const { config } = await load({ env: { CYBERUN_AGENT_KEY: KEY } });
    const masked = maskedConfig(config);
    expect(masked['agent_key']).toBe(`ak-…(set, ${KEY.length} chars)`);
    expect(JSON.stringify(masked)).not.toContain(KEY.slice(3, 10));
    expect(maskedConfig({ ...config, agentKey: undefined })['agent_key']).toBeNull();
  });
});

describe('the key table', () => {
  /** Leaf paths of an object, lists being leaves. */
  function leaves(obj: Record<string, unknown>, prefix = ''): string[] {
    return Object.entries(obj).flatMap(([k, v]) =>
      typeof v === 'object' && v !== null && !Array.isArray(v) ? leaves(v as Record<string, unknown>, `${prefix}${k}.`) : [`${prefix}${k}`],
    );
  }

  it('matches maskedConfig (and so AgentConfig) key for key', async () => {
    const { config } = await load();
    expect(leaves(maskedConfig(config)).filter((k) => k !== 'agent_key')).toEqual(CONFIG_KEYS.map((k) => k.path));
  });

  it('matches the schema: every key is validated at its own path', () => {
    const garbage: Record<string, unknown> = {};
    for (const { path: p } of CONFIG_KEYS) {
      const segs = p.split('.');
      let node = garbage;
      for (const seg of segs.slice(0, -1)) node = (node[seg] ??= {}) as Record<string, unknown>;
      node[segs.at(-1) ?? p] = { not: 'valid' };
    }
    const result = configFileSchema.safeParse(garbage);
    expect(result.success).toBe(false);
    const paths = result.error?.issues.map((i) => i.path.join('.')).sort();
    expect(paths).toEqual(CONFIG_KEYS.map((k) => k.path).sort());
  });

  it('a masked config read back as a file yields the same config', async () => {
    const { config } = await load({
      argv: ['--label', 'gpu-h100', '--set', 'volumes.allowed_roots=/data/models', '--set', 'restart.backoff_base=1500ms', '--set', 'proxy.max_body=1234567'],
    });
    const masked = maskedConfig(config);
    delete masked['agent_key'];
    const again = await load({ file: stringify(masked) });
    expect(again.config).toEqual(config);
    expect(again.warnings).toEqual([]);
  });

  it('docs/configuration.md documents every key and env var', async () => {
    const docs = await readFile(fileURLToPath(new URL('../../../docs/configuration.md', import.meta.url)), 'utf8');
    for (const { path: p, flag } of CONFIG_KEYS) {
      expect(docs).toContain(`\`${p}\``);
      expect(docs).toContain(`\`${envNameOf(p)}\``);
      if (flag !== undefined) expect(docs).toContain(`\`${flag}\``);
    }
  });
});

describe('one source of desired state', () => {
  it('refuses services_dir together with gateway_url, naming both origins', async () => {
    const home = await tempDir('cfg-src');
    await expect(
      loadConfig({ argv: ['--services-dir', home, '--gateway-url', 'ws://127.0.0.1:9/x', '--state-dir', home], env: { CYBERUN_AGENT_KEY: 'ak-abcdefghijklmnop' }, cwd: home, searchPaths: [] }),
    ).rejects.toMatchObject({ details: { issues: [expect.objectContaining({ path: 'services_dir', message: expect.stringContaining('one source') })] } });
  });
});
