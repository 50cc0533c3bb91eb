/**
 * A container as the planner sees it: what the engine reports (list + inspect), in the domain's own
 * words. The runtime adapter (src/runtime) translates the engine's JSON into it.
 */
export type ContainerState = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

export interface ObservedContainer {
  id: string;
  /** Without the leading slash. */
  name: string;
  image: string;
  labels: Record<string, string>;
  state: ContainerState;
  /** Epoch ms the container was created. */
  createdAt: number;
  /** ISO timestamp as Docker reports it; '0001-01-01T00:00:00Z' means never started. */
  startedAt: string | undefined;
  finishedAt: string | undefined;
  exitCode: number | undefined;
  oomKilled: boolean;
  /** Engine error text for a failed start (State.Error), if any. */
  error: string | undefined;
  /** IP on the agent's network, when attached. */
  ipAddress: string | undefined;
  /** Host port published for the exposed port, when published. */
  publishedPort: number | undefined;
  /** GPU device ids from HostConfig.DeviceRequests (list results may leave it empty; inspect fills it). */
  gpuDeviceIds: string[];
  /** Host paths of the container's bind mounts, as the engine reports them (inspect only; undefined from a list). */
  bindSources?: string[] | undefined;
}
