import type { AdminReplicaStatus, AdminStatus } from '../admin/status-view.js';
import type { PullStatus } from '../domain/status-types.js';
import { renderTable } from './table.js';

/** Pure renderers of `cyberun-agent status`: the AdminStatus document as text for people. */

/** 45s, 3m, 2h5m, 3d4h. */
export function formatAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${s % 3600 >= 60 ? `${Math.floor((s % 3600) / 60)}m` : ''}`;
  return `${Math.floor(s / 86_400)}d${s % 86_400 >= 3600 ? `${Math.floor((s % 86_400) / 3600)}h` : ''}`;
}

/** 512 B, 1.5 KiB, 230.0 MiB, 12.4 GiB. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i] ?? 'TiB'}`;
}

/** `[#######-------------]  35% 230.0 MiB/656.1 MiB ETA 1m` (ETA only when known, total only when announced). */
export function progressBar(pull: PullStatus, width = 20): string {
  if (pull.totalBytes <= 0) return `[${'?'.repeat(width)}] ${formatBytes(pull.currentBytes)}`;
  const ratio = Math.min(1, Math.max(0, pull.currentBytes / pull.totalBytes));
  const filled = Math.round(ratio * width);
  const eta = pull.etaSeconds === undefined ? '' : ` ETA ${formatAge(pull.etaSeconds)}`;
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.floor(ratio * 100)).padStart(3)}% ${formatBytes(pull.currentBytes)}/${formatBytes(pull.totalBytes)}${eta}`;
}

export function describeTunnel(status: AdminStatus): string {
  const t = status.tunnel;
  switch (t.kind) {
    case 'none':
      return 'none (standalone: no gateway configured)';
    case 'connected':
      return `connected for ${formatAge((status.now - t.since) / 1000)}`;
    case 'connecting':
      return `connecting (attempt ${t.attempt + 1})`;
    case 'disconnected':
      return `disconnected: ${t.reason}; retrying in ${formatAge(t.retryInMs / 1000)}`;
    case 'closed':
      return 'closed';
  }
}

/** The health column: the probe verdict for running replicas, else why the replica waits. */
function health(r: AdminReplicaStatus, maxReason: number): string {
  if (r.phase === 'pulling' && r.pull) return progressBar(r.pull);
  const reason = r.reason?.split('\n')[0]?.trim();
  if (r.phase === 'ready') return 'healthy';
  if (!reason) return r.phase === 'starting' ? 'waiting for the health check' : '-';
  return reason.length > maxReason ? `${reason.slice(0, maxReason - 1)}…` : reason;
}

/** The whole human output of `cyberun-agent status`. */
export function renderStatus(status: AdminStatus, options: { maxReason?: number } = {}): string {
  const maxReason = options.maxReason ?? 80;
  let out = `agent ${status.agentId} (v${status.version}), up ${formatAge((status.now - status.startedAt) / 1000)}, desired revision ${status.desiredRevision < 0 ? '-' : status.desiredRevision}\n`;
  out += `tunnel: ${describeTunnel(status)}\n`;
  if (status.disk) out += `disk: ${status.disk.path} ${status.disk.usedPercent.toFixed(1)}% used (${formatBytes(status.disk.usedBytes)} of ${formatBytes(status.disk.totalBytes)})\n`;
  if (status.gpus.length > 0) {
    const held = status.gpus.filter((g) => g.heldBy !== null).length;
    const sick = status.gpus.filter((g) => g.unhealthy !== null);
    const freeHealthy = status.gpus.filter((g) => g.heldBy === null && g.unhealthy === null).length;
    out += `GPUs: ${status.gpus.length} (${held} held, ${freeHealthy} free${sick.length > 0 ? `, ${sick.length} unhealthy` : ''})\n`;
    for (const g of sick) out += `  GPU ${g.id} unhealthy: ${g.unhealthy ?? ''}\n`;
  }
  out += '\n';
  if (status.services.length === 0) return `${out}no services\n`;
  const rows: string[][] = [['SERVICE', 'STATE', 'REPLICA', 'PHASE', 'HEALTH/REASON', 'GPUS', 'RESTARTS', 'AGE']];
  for (const s of status.services) {
    const name = s.slug;
    const state = `${s.state} ${s.readyReplicas}/${s.desiredReplicas}`;
    if (s.replicas.length === 0) {
      const reason = s.reason?.split('\n')[0] ?? '-';
      rows.push([name, state, '-', '-', reason.length > maxReason ? `${reason.slice(0, maxReason - 1)}…` : reason, '-', '-', '-']);
      continue;
    }
    for (const r of s.replicas) {
      rows.push([name, state, String(r.index), r.phase, health(r, maxReason), r.gpuIds.length > 0 ? r.gpuIds.join(',') : '-', String(r.restarts), formatAge(r.ageSeconds)]);
    }
  }
  const warnings = status.services.flatMap((s) => s.warnings.map((w) => `  ${s.slug}: ${w}`));
  return out + renderTable(rows) + (warnings.length > 0 ? `\nwarnings:\n${warnings.join('\n')}\n` : '');
}
