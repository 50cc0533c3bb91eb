import { definitionWarnings } from '../../../src/domain/service-warnings.js';
import { testDefinition } from '../../helpers/test-definition.js';
import { describe, expect, it } from 'vitest';
import { parseAdminListen } from '../../../src/config/admin-listen.js';
import { buildStatusView } from '../../../src/admin/status-view.js';
import type { ReplicaStatus, ServiceStatusReport } from '../../../src/domain/status-types.js';
import { formatAge, formatBytes, progressBar, renderStatus } from '../../../src/cli/status-render.js';
import { fixtureGpus } from '../../fixtures/hosts/gpu-devices.js';

const NOW = 1_750_000_000_000;

function replica(index: number, over: Partial<ReplicaStatus> = {}): ReplicaStatus {
  return { index, phase: 'ready', reason: undefined, containerId: `${index}`.repeat(64), gpuIds: [], restartCount: 0, pull: undefined, since: NOW - 90_000, specHash: 'h', ...over };
}

function report(slug: string, replicas: ReplicaStatus[], over: Partial<ServiceStatusReport> = {}): ServiceStatusReport {
  return { serviceId: `svc-${slug}`, slug, state: 'running', reason: undefined, desiredReplicas: replicas.length, readyReplicas: replicas.length, replicas, specHash: 'h', warnings: [], updatedAt: NOW, ...over };
}

describe('status rendering', () => {
  it.each([
    [0, '0s'],
    [59.9, '59s'],
    [60, '1m'],
    [3599, '59m'],
    [3600, '1h'],
    [3720, '1h2m'],
    [90_000, '1d1h'],
  ])('formatAge(%s) = %s', (s, text) => expect(formatAge(s)).toBe(text));

  it.each([
    [512, '512 B'],
    [1536, '1.5 KiB'],
    [5 * 2 ** 30, '5.0 GiB'],
  ])('formatBytes(%s) = %s', (b, text) => expect(formatBytes(b)).toBe(text));

  it.each([
    [{ currentBytes: 0, totalBytes: 0, etaSeconds: undefined }, '[????????????????????] 0 B'],
    [{ currentBytes: 256 * 2 ** 20, totalBytes: 2 ** 30, etaSeconds: 75 }, '[#####---------------]  25% 256.0 MiB/1.0 GiB ETA 1m'],
    [{ currentBytes: 2 ** 30, totalBytes: 2 ** 30, etaSeconds: undefined }, '[####################] 100% 1.0 GiB/1.0 GiB'],
  ])('progressBar(%j)', (pull, text) => expect(progressBar(pull)).toBe(text));

  it('renders services, replicas, phase, health, GPUs, restarts, age and the tunnel', () => {
    const view = buildStatusView({
      agentId: 'gpu-01',
      version: '1.2.3',
      now: NOW,
      startedAt: NOW - 7_200_000,
      desiredRevision: 7,
      tunnel: { kind: 'connected', since: NOW - 300_000 },
      labels: ['gpu'],
      gpus: fixtureGpus('a100x4'),
      claims: [{ serviceId: 'svc-llm', serviceSlug: 'llm', replicaIndex: 0, gpuIds: ['0', '1'] }],
      services: [
        report('web', [replica(0), replica(1, { phase: 'unhealthy', reason: 'GET /health: 503\nmore', restartCount: 2 })], { readyReplicas: 1, state: 'deploying' }),
        report('llm', [replica(0, { phase: 'pulling', gpuIds: ['0', '1'], containerId: undefined, pull: { currentBytes: 2 ** 29, totalBytes: 2 ** 30, etaSeconds: 30 } })], { readyReplicas: 0, state: 'deploying' }),
        report('api', [], { state: 'failed', reason: 'requires label "gpu-h100"', desiredReplicas: 1, readyReplicas: 0 }),
      ],
    });
    expect(view.services.map((s) => s.slug)).toEqual(['api', 'llm', 'web']);
    expect(view.gpus.filter((g) => g.heldBy?.slug === 'llm').map((g) => g.id)).toEqual(['0', '1']);
    expect(view.services[2]?.replicas[0]?.containerId).toBe('000000000000');
    const text = renderStatus(view);
    expect(text).toBe(
      [
        'agent gpu-01 (v1.2.3), up 2h, desired revision 7',
        'tunnel: connected for 5m',
        'GPUs: 4 (2 held, 2 free)',
        '',
        'SERVICE  STATE          REPLICA  PHASE      HEALTH/REASON                                          GPUS  RESTARTS  AGE',
        'api      failed 0/1     -        -          requires label "gpu-h100"                              -     -         -',
        'llm      deploying 0/1  0        pulling    [##########----------]  50% 512.0 MiB/1.0 GiB ETA 30s  0,1   0         1m',
        'web      deploying 1/2  0        ready      healthy                                                -     0         1m',
        'web      deploying 1/2  1        unhealthy  GET /health: 503                                       -     2         1m',
        '',
      ].join('\n'),
    );
  });

  it('shows the usage of the engine’s data root when image GC measured it', () => {
    const disk = { path: '/var/lib/docker', usedBytes: 86 * 2 ** 30, totalBytes: 100 * 2 ** 30, usedPercent: 86, measuredAt: NOW };
    const view = buildStatusView({ agentId: 'a', version: '1', now: NOW, startedAt: NOW, desiredRevision: -1, tunnel: undefined, labels: [], gpus: [], claims: [], services: [], disk });
    expect(view.disk).toEqual(disk);
    expect(renderStatus(view)).toContain('disk: /var/lib/docker 86.0% used (86.0 GiB of 100.0 GiB)\n');
    expect(buildStatusView({ ...{ agentId: 'a', version: '1', now: NOW, startedAt: NOW, desiredRevision: -1, tunnel: undefined, labels: [], gpus: [], claims: [], services: [] } }).disk).toBeNull();
  });

  it('counts unhealthy GPUs apart and says why each one is', () => {
    const gpus = fixtureGpus('a100x4').map((g) => (g.id === '3' ? { ...g, unhealthy: 'no longer listed by nvidia-smi (last seen at 00000000:C1:00.0)' } : g));
    const view = buildStatusView({ agentId: 'a', version: '1', now: NOW, startedAt: NOW, desiredRevision: -1, tunnel: undefined, labels: [], gpus, claims: [{ serviceId: 's', serviceSlug: 'llm', replicaIndex: 0, gpuIds: ['0'] }], services: [] });
    expect(view.gpus.map((g) => g.unhealthy)).toEqual([null, null, null, 'no longer listed by nvidia-smi (last seen at 00000000:C1:00.0)']);
    expect(renderStatus(view)).toContain('GPUs: 4 (1 held, 2 free, 1 unhealthy)\n  GPU 3 unhealthy: no longer listed by nvidia-smi (last seen at 00000000:C1:00.0)\n');
  });

  it('lists what the agent ignores in a definition under the table, by service', () => {
    const warning = definitionWarnings({ ...testDefinition('llm'), env_config: [{ env_name: 'NVIDIA_VISIBLE_DEVICES', env_value: 'all' }, { env_name: 'ROCR_VISIBLE_DEVICES', env_value: '0' }, { env_name: 'MODEL', env_value: 'secret-model' }] });
    expect(warning).toEqual([expect.stringMatching(/^env_config NVIDIA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES are ignored: GPU access comes from gpu_count only/)]);
    expect(warning.join()).not.toContain('all');
    const view = buildStatusView({ agentId: 'a', version: '1', now: NOW, startedAt: NOW, desiredRevision: 1, tunnel: undefined, labels: [], gpus: [], claims: [], services: [report('llm', [replica(0)], { warnings: warning })] });
    expect(renderStatus(view)).toMatch(/\nwarnings:\n  llm: env_config NVIDIA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES are ignored/);
  });

  it.each([
    [{ kind: 'none' }, 'none (standalone: no gateway configured)'],
    [{ kind: 'connecting', attempt: 2 }, 'connecting (attempt 3)'],
    [{ kind: 'disconnected', reason: 'gateway closed the connection (1001)', retryInMs: 4000, attempt: 1 }, 'disconnected: gateway closed the connection (1001); retrying in 4s'],
  ] as const)('tunnel %j', (tunnel, text) => {
    const view = { ...buildStatusView({ agentId: 'a', version: '1', now: NOW, startedAt: NOW, desiredRevision: -1, tunnel: undefined, labels: [], gpus: [], claims: [], services: [] }), tunnel };
    expect(renderStatus(view)).toContain(`tunnel: ${text}\n`);
    expect(renderStatus(view)).toContain('no services');
  });
});

describe('admin.listen', () => {
  it.each([
    [undefined, { kind: 'unix', path: '/var/lib/cyberun-agent/admin.sock' }],
    ['/run/cyberun/admin.sock', { kind: 'unix', path: '/run/cyberun/admin.sock' }],
    ['127.0.0.1:9464', { kind: 'tcp', host: '127.0.0.1', port: 9464 }],
    ['[::1]:0', { kind: 'tcp', host: '::1', port: 0 }],
    ['localhost:9464', { kind: 'tcp', host: 'localhost', port: 9464 }],
    ['off', { kind: 'off' }],
  ])('%s → %j', (value, address) => expect(parseAdminListen(value, '/var/lib/cyberun-agent')).toEqual(address));

  it.each(['0.0.0.0:9464', '10.0.0.1:9464', 'admin.sock', '127.0.0.1:70000', ':9464'])('refuses %s (not local)', (value) => {
    expect(() => parseAdminListen(value, '/x')).toThrow(/not a local admin address/);
  });
});
