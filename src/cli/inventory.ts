import { parseCommandArgs } from './args.js';
import { homedir } from 'node:os';
import path from 'node:path';
import { errorMessage } from '../errors.js';
import { readInventory } from '../host/inventory.js';
import type { ReadInventoryOptions } from '../host/inventory.js';
import { mergeLabels } from '../host/labels.js';
import type { HostInventory } from '../host/types.js';
import type { CliCommand, CliIo } from './io.js';
import { renderTable } from './table.js';
import { Labels } from '../domain/ownership-labels.js';
import { silentLogger } from '../log.js';

const USAGE = 'usage: cyberun-agent inventory [--json]\n';
const TIMEOUT_MS = 15_000;

/** One GPU held by one managed container, as read from its labels. */
export interface GpuAllocation {
  gpuId: string;
  serviceSlug: string;
  replica: string;
  containerState: string;
}

export interface InventoryCommandDeps {
  readInventory: (options: ReadInventoryOptions) => Promise<HostInventory>;
  /** Current allocations, or a reason they cannot be read (e.g. no engine). */
  allocations: (io: CliIo) => Promise<GpuAllocation[] | string>;
}

/**
 * Allocations from the labels of managed containers on the local engine (agent running or not).
 * The engine is the one DOCKER_HOST names (CYBERUN_DOCKER_HOST first), with the docker CLI's TLS
 * files when DOCKER_TLS_VERIFY is set.
 */
async function engineAllocations(io: CliIo): Promise<GpuAllocation[] | string> {
  try {
    // Imported on use, as in agent.ts: every command loads this module, few talk to the engine.
    const [{ DockerRuntime }, { loadEngineTls }] = await Promise.all([import('../runtime/docker-runtime.js'), import('../runtime/engine-connection.js')]);
    const certPath = io.env['DOCKER_CERT_PATH'] || path.join(io.env['HOME'] ?? homedir(), '.docker');
    const tlsFiles = io.env['DOCKER_TLS_VERIFY'] ? { caFile: path.join(certPath, 'ca.pem'), certFile: path.join(certPath, 'cert.pem'), keyFile: path.join(certPath, 'key.pem') } : {};
    const runtime = new DockerRuntime({
      socketPath: '/var/run/docker.sock',
      host: io.env['CYBERUN_DOCKER_HOST'] ?? io.env['DOCKER_HOST'],
      tls: await loadEngineTls(tlsFiles),
      apiTimeoutMs: 5_000,
      addressing: 'auto',
      logger: silentLogger(),
    });
    const containers = await runtime.listContainers({ [Labels.MANAGED]: 'true' });
    return containers.flatMap((c) =>
      (c.labels[Labels.GPUS] ?? '').split(',').filter(Boolean).map((gpuId) => ({
        gpuId,
        serviceSlug: c.labels[Labels.SERVICE_SLUG] ?? '?',
        replica: c.labels[Labels.REPLICA] ?? '?',
        containerState: c.state,
      })),
    );
  } catch (err) {
    return `allocations unavailable: ${errorMessage(err)}`;
  }
}

/** Labels from `CYBERUN_AGENT_LABELS` (comma-separated). */
function configuredLabels(io: CliIo): string[] {
  return (io.env['CYBERUN_AGENT_LABELS'] ?? '').split(',');
}

function mib(value: number | undefined): string {
  return value === undefined ? '-' : `${value} MiB`;
}

function render(inventory: HostInventory, labels: string[], allocations: GpuAllocation[] | string): string {
  let out = '';
  const holder = (id: string) => {
    if (typeof allocations === 'string') return '?';
    const held = allocations.filter((a) => a.gpuId === id).map((a) => `${a.serviceSlug}/${a.replica} (${a.containerState})`);
    return held.length > 0 ? held.join(', ') : 'free';
  };
  if (inventory.gpus.length === 0) {
    out += `GPUs: none (source: ${inventory.gpuSource})\n`;
  } else {
    out += `GPUs (source: ${inventory.gpuSource})\n`;
    out += renderTable([
      ['INDEX', 'MODEL', 'VRAM TOTAL', 'VRAM FREE', 'BUS ID', 'HEALTH', 'HELD BY'],
      ...inventory.gpus.map((gpu) => [gpu.id, gpu.model, mib(gpu.vramTotalMb), mib(gpu.vramFreeMb), gpu.busId ?? '-', gpu.unhealthy === undefined ? 'healthy' : 'UNHEALTHY', holder(gpu.id)]),
    ]);
    for (const gpu of inventory.gpus) if (gpu.unhealthy !== undefined) out += `GPU ${gpu.id} is unhealthy: ${gpu.unhealthy}\n`;
    if (typeof allocations === 'string') out += `(${allocations})\n`;
  }
  const gib = (inventory.memoryBytes / 1024 ** 3).toFixed(1);
  out += '\n';
  out += renderTable([
    ['CPU', `${inventory.cpu.model} (${inventory.cpu.cores} cores)`],
    ['Memory', `${gib} GiB`],
    ['Platform', inventory.platformArch],
    ['Labels', labels.length > 0 ? labels.join(', ') : '(none)'],
  ]);
  return out;
}

/** `cyberun-agent inventory [--json]`: what this host offers, as the agent sees it. */
export function createInventoryCommand(deps: InventoryCommandDeps): CliCommand {
  return async (args, io) => {
    const parsed = parseCommandArgs(args, { json: { type: 'boolean' } });
    if (!parsed.ok || parsed.positionals.length > 0) {
      io.stderr.write(`cyberun-agent inventory: ${parsed.ok ? `unexpected argument "${parsed.positionals[0]}"` : parsed.problem}\n${USAGE}`);
      return 2;
    }
    if (parsed.help) {
      io.stdout.write(USAGE);
      return 0;
    }
    const json = parsed.values.json === true;
    let inventory: HostInventory;
    try {
      inventory = await deps.readInventory({ detect: 'auto', timeoutMs: TIMEOUT_MS, env: { ...io.env } });
    } catch (err) {
      io.stderr.write(`inventory failed: ${errorMessage(err)}\n`);
      return 1;
    }
    const labels = mergeLabels(inventory.hardwareLabels, configuredLabels(io));
    const allocations = await deps.allocations(io);
    io.stdout.write(json ? `${JSON.stringify({ ...inventory, labels, allocations }, null, 2)}\n` : render(inventory, labels, allocations));
    return 0;
  };
}

export const inventoryCommand: CliCommand = createInventoryCommand({ readInventory, allocations: engineAllocations });
