import { readFile, readdir } from 'node:fs/promises';
import { engineCall } from '../test/helpers/docker.js';

/** USER_HZ: /proc/<pid>/stat counts CPU time in these ticks (100 on every Linux this runs on). */
const CLK_TCK = 100;

/** utime and stime in seconds of a /proc …/stat text (its fields 14 and 15). */
function userAndKernelOfStat(stat: string): { user: number; kernel: number } {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11] ?? 0) / CLK_TCK, kernel: Number(fields[12] ?? 0) / CLK_TCK };
}

/** utime + stime in seconds of a /proc …/stat text. */
function cpuSecondsOfStat(stat: string): number {
  const { user, kernel } = userAndKernelOfStat(stat);
  return user + kernel;
}

/** utime + stime of a process in seconds (fields 14 and 15 of /proc/<pid>/stat). */
export async function processCpuSeconds(pid: number): Promise<number> {
  return cpuSecondsOfStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
}

export interface ThreadTotals {
  mainCpu: number;
  /** Of mainCpu, the time in the kernel (system calls, and the network stack's work they do). */
  mainKernel: number;
  otherCpu: number;
  mainSwitches: number;
}

/**
 * CPU seconds of the processes' main threads and of their other threads (V8's GC helpers, libuv's
 * pool) so far, and the main threads' voluntary switches; a process that is gone counts nothing.
 */
export async function threadTotals(pids: readonly number[]): Promise<ThreadTotals> {
  const t: ThreadTotals = { mainCpu: 0, mainKernel: 0, otherCpu: 0, mainSwitches: 0 };
  for (const pid of pids) {
    for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
      const { user, kernel } = userAndKernelOfStat(await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => ''));
      if (tid !== String(pid)) {
        t.otherCpu += user + kernel;
        continue;
      }
      t.mainCpu += user + kernel;
      t.mainKernel += kernel;
      const status = await readFile(`/proc/${pid}/task/${tid}/status`, 'utf8').catch(() => '');
      t.mainSwitches += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    }
  }
  return t;
}

/** utime + stime of several processes in seconds; a process that is gone counts 0 (sshd's children come and go). */
export async function processesCpuSeconds(pids: readonly number[]): Promise<number> {
  return (await Promise.all(pids.map((p) => processCpuSeconds(p).catch(() => 0)))).reduce((a, b) => a + b, 0);
}

/** Voluntary context switches of a process so far, all its threads (each is a sleep and a wake-up). */
export async function voluntarySwitches(pid: number): Promise<number> {
  let sum = 0;
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    const status = await readFile(`/proc/${pid}/task/${tid}/status`, 'utf8').catch(() => '');
    sum += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  }
  return sum;
}

/** CPU seconds a container used so far (all its processes), from the Engine's stats. */
export async function containerCpuSeconds(id: string): Promise<number> {
  const answer = await engineCall('GET', `/containers/${id}/stats?stream=false&one-shot=true`);
  const stats = JSON.parse(answer.body) as { cpu_stats?: { cpu_usage?: { total_usage?: number } } };
  const ns = stats.cpu_stats?.cpu_usage?.total_usage;
  if (ns === undefined) throw new Error(`no CPU stats for container ${id} (HTTP ${answer.status})`);
  return ns / 1e9;
}
