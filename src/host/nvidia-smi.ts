import { execFile } from 'node:child_process';
import { AgentError, ErrorCodes } from '../errors.js';

/** The fields the agent asks nvidia-smi for, in this order. */
export const NVIDIA_SMI_QUERY_FIELDS = [
  'index',
  'uuid',
  'name',
  'memory.total',
  'memory.free',
  'pci.bus_id',
  'driver_version',
] as const;

export const NVIDIA_SMI_ARGS: readonly string[] = [
  `--query-gpu=${NVIDIA_SMI_QUERY_FIELDS.join(',')}`,
  '--format=csv,noheader,nounits',
];

/** One row of `nvidia-smi --query-gpu=…` output. Values nvidia-smi reports as `[N/A]` are undefined. */
export interface NvidiaSmiGpu {
  index: number;
  uuid: string | undefined;
  name: string;
  /** MiB */
  memoryTotalMb: number | undefined;
  /** MiB */
  memoryFreeMb: number | undefined;
  busId: string | undefined;
  driverVersion: string | undefined;
}

export type NvidiaSmiResult =
  | { kind: 'ok'; gpus: NvidiaSmiGpu[] }
  /** nvidia-smi is missing, has no driver to talk to, failed, or timed out: no usable GPU data. */
  | { kind: 'unavailable'; reason: string };

function present(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === '' || v === 'N/A' || (v.startsWith('[') && v.endsWith(']'))) return undefined;
  return v;
}

function integer(value: string | undefined): number | undefined {
  const v = present(value);
  if (v === undefined || !/^\d+$/.test(v)) return undefined;
  return Number(v);
}

/**
 * Parses the output of `nvidia-smi` run with NVIDIA_SMI_ARGS. Pure. Empty output is no GPUs.
 * Throws AgentError INVENTORY_FAILED on a row that is not of that form (a changed or broken tool).
 */
export function parseNvidiaSmiQuery(stdout: string): NvidiaSmiGpu[] {
  const gpus: NvidiaSmiGpu[] = [];
  for (const raw of stdout.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '') continue;
    const parts = line.split(', ');
    const index = integer(parts[0]);
    if (parts.length < NVIDIA_SMI_QUERY_FIELDS.length || index === undefined) {
      throw new AgentError(
        ErrorCodes.INVENTORY_FAILED,
        `nvidia-smi printed an unexpected line "${line}"; expected ${NVIDIA_SMI_QUERY_FIELDS.join(', ')}`,
      );
    }
    // The name is the only free-text field; keep any ", " inside it.
    const tail = parts.slice(-4);
    gpus.push({
      index,
      uuid: present(parts[1]),
      name: parts.slice(2, parts.length - 4).join(', ').trim(),
      memoryTotalMb: integer(tail[0]),
      memoryFreeMb: integer(tail[1]),
      busId: present(tail[2]),
      driverVersion: present(tail[3]),
    });
  }
  return gpus.sort((a, b) => a.index - b.index);
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
        if (error) {
          if (options.signal?.aborted) {
            reject(new AgentError(ErrorCodes.ABORTED, 'nvidia-smi was aborted', { cause: error }));
            return;
          }
          const code = (error as NodeJS.ErrnoException).code;
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
          resolve({ kind: 'ok', gpus: parseNvidiaSmiQuery(stdout) });
        } catch (err) {
          reject(err);
        }
      },
    );
  });
}
