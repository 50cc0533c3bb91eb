import { engineCall } from './docker.js';

/** The parts of `docker inspect` the tests read. */
export interface InspectInfo {
  Id: string;
  Name: string;
  State: { Running: boolean; Status: string; StartedAt: string; FinishedAt: string; ExitCode: number; Error: string };
  Config: { Env: string[]; Labels: Record<string, string>; Image: string };
  HostConfig: {
    SecurityOpt: string[] | null;
    Privileged: boolean;
    Binds: string[] | null;
    DeviceRequests: Array<{ Driver: string; DeviceIDs: string[] | null; Capabilities: string[][] | null }> | null;
    CapDrop: string[] | null;
    PidsLimit: number | null;
    ShmSize: number;
    Ulimits: Array<{ Name: string; Soft: number; Hard: number }> | null;
  };
  Mounts: Array<{ Type: string; Source: string; Destination: string }>;
  NetworkSettings: { Networks: Record<string, { IPAddress: string }> };
}

export async function inspect(id: string): Promise<InspectInfo | undefined> {
  const a = await engineCall('GET', `/containers/${id}/json`);
  if (a.status === 404) return undefined;
  if (a.status !== 200) throw new Error(`inspect ${id}: ${a.status} ${a.body}`);
  return JSON.parse(a.body) as InspectInfo;
}

/** Ids of all containers (any state) carrying `label` (`key=value` or `key`). */
export async function listByLabel(label: string): Promise<string[]> {
  const filters = encodeURIComponent(JSON.stringify({ label: [label] }));
  const a = await engineCall('GET', `/containers/json?all=true&filters=${filters}`);
  if (a.status !== 200) throw new Error(`list ${label}: ${a.status} ${a.body}`);
  return (JSON.parse(a.body) as Array<{ Id: string }>).map((c) => c.Id);
}

/** Force-removes every container carrying `label`. */
export async function sweepByLabel(label: string): Promise<void> {
  for (const id of await listByLabel(label)) await engineCall('DELETE', `/containers/${id}?force=true&v=true`, 30_000);
}
