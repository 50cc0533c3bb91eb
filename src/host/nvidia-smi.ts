import { execFile } from 'node:child_process';
import { AgentError, ErrorCodes } from '../errors.js';
import { parseUnopenedGpu, rowFault, type UnopenedGpu } from './gpu-health.js';

/**
 * The fields the agent asks nvidia-smi for, in this order. `temperature.gpu` and `pstate` are
 * asked for their health signal: they are the readings that show an NVML error first on a GPU
 * that needs a reset or fell off the bus (gpu-health.ts).
 */
export const NVIDIA_SMI_QUERY_FIELDS = [
  'index',
  'uuid',
  'name',
  'memory.total',
  'memory.free',
  'pci.bus_id',
  'driver_version',
  'temperature.gpu',
  'pstate',
] as const;

export const NVIDIA_SMI_ARGS: readonly string[] = [
  `--query-gpu=${NVIDIA_SMI_QUERY_FIELDS.join(',')}`,
  '--format=csv,noheader,nounits',
];

/** One row of `nvidia-smi --query-gpu=…` output. Values nvidia-smi reports as `[N/A]` or errors are undefined. */
export interface NvidiaSmiGpu {
  index: number;
  uuid: string | undefined;
  /** undefined when nvidia-smi printed no name (an error or `[N/A]` instead). */
  name: string | undefined;
  /** MiB */
  memoryTotalMb: number | undefined;
  /** MiB */
  memoryFreeMb: number | undefined;
  busId: string | undefined;
  driverVersion: string | undefined;
  /** Why this row shows a broken GPU (gpu-health.ts `rowFault`); undefined when it looks healthy. */
  fault: string | undefined;
}

export type NvidiaSmiResult =
  /** `unopened`: GPUs nvidia-smi named but could not open (lost, fell off the bus). */
  | { kind: 'ok'; gpus: NvidiaSmiGpu[]; unopened: UnopenedGpu[] }
  /** nvidia-smi is missing, has no driver to talk to, failed, or timed out: no usable GPU data. */
  | { kind: 'unavailable'; reason: string };

function present(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === '' || v === 'N/A' || v === 'ERR!' || (v.startsWith('[') && v.endsWith(']'))) return undefined;
  return v;
}

function integer(value: string | undefined): number | undefined {
  const v = present(value);
  if (v === undefined || !/^\d+$/.test(v)) return undefined;
  return Number(v);
}

/** Fields after the free-text name. */
const AFTER_NAME = NVIDIA_SMI_QUERY_FIELDS.length - 3;

/**
 * Parses the output of `nvidia-smi` run with NVIDIA_SMI_ARGS. Pure. Empty output is no GPUs.
 * Lines saying a GPU could not be opened (`Unable to determine the device handle for GPU…`) are
 * returned in `unopened`, wherever they appear. Throws AgentError INVENTORY_FAILED on any other
 * line that is not of that form (a changed or broken tool).
 */
export function parseNvidiaSmiOutput(stdout: string): { gpus: NvidiaSmiGpu[]; unopened: UnopenedGpu[] } {
  const gpus: NvidiaSmiGpu[] = [];
  const unopened: UnopenedGpu[] = [];
  for (const raw of stdout.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '') continue;
    const lost = parseUnopenedGpu(line);
    if (lost) {
      unopened.push(lost);
      continue;
    }
    const parts = line.split(', ');
    const index = integer(parts[0]);
    if (parts.length < NVIDIA_SMI_QUERY_FIELDS.length || index === undefined) {
      throw new AgentError(
        ErrorCodes.INVENTORY_FAILED,
        `nvidia-smi printed an unexpected line "${line}"; expected ${NVIDIA_SMI_QUERY_FIELDS.join(', ')}`,
      );
    }
    // The name is the only free-text field; keep any ", " inside it.
    const tail = parts.slice(-AFTER_NAME);
    const name = parts.slice(2, parts.length - AFTER_NAME).join(', ').trim();
    const row: Record<string, string> = { index: parts[0] ?? '', uuid: parts[1] ?? '', name };
    NVIDIA_SMI_QUERY_FIELDS.slice(3).forEach((field, i) => (row[field] = tail[i] ?? ''));
    gpus.push({
      index,
      uuid: present(row['uuid']),
      name: present(name),
      memoryTotalMb: integer(row['memory.total']),
      memoryFreeMb: integer(row['memory.free']),
      busId: present(row['pci.bus_id']),
      driverVersion: present(row['driver_version']),
      fault: rowFault(row),
    });
  }
  return { gpus: gpus.sort((a, b) => a.index - b.index), unopened };
}

/** The rows of `parseNvidiaSmiOutput`, for callers that only want the GPUs nvidia-smi listed. */
export function parseNvidiaSmiQuery(stdout: string): NvidiaSmiGpu[] {
  return parseNvidiaSmiOutput(stdout).gpus;
}

export interface NvidiaSmiOptions {
  timeoutMs: number;
  /** Environment of the child (PATH decides which nvidia-smi runs). Defaults to process.env. */
  env?: NodeJS.ProcessEnv | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Runs nvidia-smi once. Never throws for a host without nvidia-smi or without a driver (that is
 * `unavailable`, with the reason); throws INVENTORY_FAILED only when the tool answers in a form it
 * cannot read, and ABORTED when `signal` aborts.
 *
 * A non-zero exit is not the end of it: with a GPU that fell off the bus nvidia-smi still lists the
 * others and names the lost one (`Unable to determine the device handle…`, on either stream), so
 * whatever it printed of that kind is `ok`. Only an exit with neither rows nor such lines is
 * `unavailable`.
 */
export function queryNvidiaSmi(options: NvidiaSmiOptions): Promise<NvidiaSmiResult> {
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  return new Promise((resolve, reject) => {
    execFile(
      'nvidia-smi',
      [...NVIDIA_SMI_ARGS],
      { env: options.env ?? process.env, signal, encoding: 'utf8', maxBuffer: 1024 * 1024, windowsHide: true },
      (error, stdout, stderr) => {
        const unopened = stderr.split(/\r?\n/).flatMap((line) => parseUnopenedGpu(line) ?? []);
        if (error) {
          if (options.signal?.aborted) {
            reject(new AgentError(ErrorCodes.ABORTED, 'nvidia-smi was aborted', { cause: error }));
            return;
          }
          const code = (error as NodeJS.ErrnoException).code;
          const partial = code === 'ENOENT' || timeout.aborted ? undefined : readablePart(stdout, unopened);
          if (partial !== undefined) {
            resolve({ kind: 'ok', ...partial });
            return;
          }
          let reason: string;
          if (code === 'ENOENT') reason = 'nvidia-smi is not on PATH';
          else if (timeout.aborted) reason = `nvidia-smi did not answer within ${options.timeoutMs} ms`;
          else {
            const said = `${stdout}\n${stderr}`.trim().split(/\r?\n/)[0] ?? '';
            reason = `nvidia-smi failed (exit ${String(code)})${said ? `: ${said}` : ''}`;
          }
          resolve({ kind: 'unavailable', reason });
          return;
        }
        try {
          const parsed = parseNvidiaSmiOutput(stdout);
          resolve({ kind: 'ok', gpus: parsed.gpus, unopened: [...parsed.unopened, ...unopened] });
        } catch (err) {
          reject(err);
        }
      },
    );
  });
}

/** What a failed run still tells: its rows and unopened GPUs, or undefined when it tells neither. */
function readablePart(stdout: string, fromStderr: UnopenedGpu[]): { gpus: NvidiaSmiGpu[]; unopened: UnopenedGpu[] } | undefined {
  let parsed: { gpus: NvidiaSmiGpu[]; unopened: UnopenedGpu[] };
  try {
    parsed = parseNvidiaSmiOutput(stdout);
  } catch {
    return undefined;
  }
  const unopened = [...parsed.unopened, ...fromStderr];
  return parsed.gpus.length > 0 || unopened.length > 0 ? { gpus: parsed.gpus, unopened } : undefined;
}
