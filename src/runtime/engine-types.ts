/**
 * The parts of Docker Engine API JSON (API 1.41, Docker 20.10) the agent writes or reads. Field
 * names and nullability follow the engine's answers as captured in test/fixtures/docker/; fields
 * the agent never touches are left out. Types only: no runtime code.
 */

export interface EngineDeviceRequest {
  Driver?: string;
  Count?: number;
  DeviceIDs?: string[] | null;
  Capabilities?: string[][] | null;
  Options?: Record<string, string> | null;
}

export interface EnginePortBinding {
  HostIp?: string;
  HostPort?: string;
}

export type EnginePortMap = Record<string, EnginePortBinding[] | null | undefined>;

export interface EngineHostConfig {
  Binds?: string[] | null;
  NetworkMode?: string;
  Privileged?: boolean;
  SecurityOpt?: string[] | null;
  LogConfig?: { Type: string; Config?: Record<string, string> };
  RestartPolicy?: { Name: string; MaximumRetryCount?: number };
  Init?: boolean | null;
  PortBindings?: EnginePortMap | null;
  DeviceRequests?: EngineDeviceRequest[] | null;
  CapDrop?: string[] | null;
  PidsLimit?: number | null;
  ShmSize?: number;
  Memory?: number;
  Runtime?: string;
  Ulimits?: Array<{ Name: string; Soft: number; Hard: number }> | null;
}

/** Body of POST /containers/create, plus the `name` query parameter the adapter splits off. */
export interface EngineContainerCreateOptions {
  name?: string;
  Image: string;
  Env?: string[];
  Labels?: Record<string, string>;
  ExposedPorts?: Record<string, Record<string, never>>;
  Tty?: boolean;
  HostConfig?: EngineHostConfig;
}

export interface EngineEndpointSettings {
  NetworkID?: string;
  EndpointID?: string;
  Gateway?: string;
  IPAddress?: string;
  IPPrefixLen?: number;
  MacAddress?: string;
  Aliases?: string[] | null;
}

/** GET /containers/{id}/json. */
export interface EngineContainerInspect {
  Id: string;
  /** RFC 3339 with nanoseconds. */
  Created: string;
  /** With the leading slash. */
  Name: string;
  /** The image id (sha256:…); the reference asked for is Config.Image. */
  Image: string;
  State?: {
    Status?: string;
    Running?: boolean;
    OOMKilled?: boolean;
    ExitCode?: number;
    Error?: string;
    StartedAt?: string;
    FinishedAt?: string;
  };
  Config?: { Image?: string; Labels?: Record<string, string> | null };
  HostConfig?: EngineHostConfig;
  Mounts?: Array<{ Type?: string; Source?: string; Destination?: string }> | null;
  NetworkSettings: {
    Ports?: EnginePortMap | null;
    Networks?: Record<string, EngineEndpointSettings> | null;
  };
}

/** One entry of GET /containers/json. */
export interface EngineContainerListEntry {
  Id: string;
  /** With leading slashes. */
  Names: string[];
  Image: string;
  /** Epoch seconds. */
  Created: number;
  State?: string;
  Labels?: Record<string, string> | null;
  Ports?: Array<{ IP?: string; PrivatePort: number; PublicPort?: number; Type: string }> | null;
  NetworkSettings?: { Networks?: Record<string, EngineEndpointSettings> | null } | null;
}
