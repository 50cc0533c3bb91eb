import { loadConfig } from '../config/load-config.js';
import { readInventory } from '../host/inventory.js';
import { mergeLabels } from '../host/labels.js';
import { hostRejection, refusedPathsFor } from '../reconcile/host-rejection.js';
import type { ServiceDefinition } from '../service-definition/types.js';
import type { CliIo } from './io.js';

export type HostVerdict = { kind: 'eligible'; labels: string[] } | { kind: 'rejected'; reason: string };

/**
 * Judges a valid definition against this host as the agent would: labels from the agent's
 * configuration plus detected hardware, GPUs from the inventory, volumes against the allowlist.
 * GPUs currently held by other services are not considered: that is `pending`, not `rejected`.
 */
export async function judgeOnThisHost(definition: ServiceDefinition, io: CliIo): Promise<HostVerdict> {
  const { config } = await loadConfig({ argv: [], env: io.env, cwd: io.cwd });
  const inventory = await readInventory({ detect: config.gpu.detect, timeoutMs: 15_000, env: { ...io.env } });
  const labels = mergeLabels(inventory.hardwareLabels, config.agentLabels);
  const refusedPaths = await refusedPathsFor(config.stateDir, config.docker.host === undefined ? config.docker.socketPath : undefined);
  const reason = await hostRejection(definition, { labels, gpus: inventory.gpus, allowedRoots: config.volumes.allowedRoots, refusedPaths, allowedRegistries: config.pull.allowedRegistries });
  return reason === undefined ? { kind: 'eligible', labels } : { kind: 'rejected', reason };
}
