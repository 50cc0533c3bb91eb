import { describe, expect, it } from 'vitest';
import { allocateGpus, claimsFromContainers, gpuEnvironment, pciGroup, restartVerdict, unhealthyHeld } from '../../../src/domain/gpu-allocator.js';
import type { AllocationRequest, AllocationVerdict, GpuClaim } from '../../../src/domain/gpu-allocator.js';
import { fixtureGpus } from '../../fixtures/hosts/gpu-devices.js';

const H100 = fixtureGpus('h100x8'); // bus 53 64 75 | 86 97 a8 b9 ca  → groups low: 0-2, high: 3-7
const A100 = fixtureGpus('a100x4'); // bus 01 41 | 81 c1              → groups low: 0-1, high: 2-3
const RTX = fixtureGpus('rtx4090x1');
const NONE = fixtureGpus('nogpu');

function claim(serviceSlug: string, gpuIds: string[], replicaIndex = 0): GpuClaim {
  return { serviceId: `id-${serviceSlug}`, serviceSlug, replicaIndex, gpuIds };
}
function req(serviceSlug: string, gpuCount: number, extra: Partial<AllocationRequest> = {}): AllocationRequest {
  return { serviceId: `id-${serviceSlug}`, serviceSlug, replicaIndex: 0, gpuCount, ...extra };
}
const ids = (...n: number[]) => n.map(String);

describe('pciGroup', () => {
  it('splits each PCI domain into its low and high bus halves', () => {
    expect(H100.map(pciGroup)).toEqual(['0:low', '0:low', '0:low', '0:high', '0:high', '0:high', '0:high', '0:high']);
    expect(A100.map(pciGroup)).toEqual(['0:low', '0:low', '0:high', '0:high']);
    expect(pciGroup({ ...RTX[0]!, busId: undefined })).toBe('unknown');
  });
});

describe('allocateGpus: allocated', () => {
  it.each<[string, typeof H100, GpuClaim[], AllocationRequest, string[]]>([
    ['0 GPUs on an 8-GPU host', H100, [], req('web', 0), []],
    ['0 GPUs on a GPU-less host', NONE, [], req('web', 0), []],
    ['1 of 8, lowest index', H100, [], req('a', 1), ids(0)],
    ['2 of 8 stay in the low group', H100, [], req('a', 2), ids(0, 1)],
    ['3 of 8 fill the low group', H100, [], req('a', 3), ids(0, 1, 2)],
    ['4 of 8 do not fit the low group (3), so the high group', H100, [], req('a', 4), ids(3, 4, 5, 6)],
    ['5 of 8 fit the high group exactly', H100, [], req('a', 5), ids(3, 4, 5, 6, 7)],
    ['6 of 8 fit no group: lowest indices', H100, [], req('a', 6), ids(0, 1, 2, 3, 4, 5)],
    ['8 of 8', H100, [], req('a', 8), ids(0, 1, 2, 3, 4, 5, 6, 7)],
    ['-1 takes every GPU', H100, [], req('a', -1), ids(0, 1, 2, 3, 4, 5, 6, 7)],
    ['around a holder, still one group', H100, [claim('x', ids(0))], req('a', 2), ids(1, 2)],
    ['low group too small after holders: high group', H100, [claim('x', ids(1))], req('a', 3), ids(3, 4, 5)],
    ['fragmented: lowest free indices', H100, [claim('x', ids(0, 3, 4, 5))], req('a', 4), ids(1, 2, 6, 7)],
    ['a100: 2 of 4 in the first group', A100, [], req('a', 2), ids(0, 1)],
    ['a100: first group broken, second group whole', A100, [claim('x', ids(0))], req('a', 2), ids(2, 3)],
    ['a100: 3 of 4 fit no group', A100, [], req('a', 3), ids(0, 1, 2)],
    ['rtx: the only GPU', RTX, [], req('a', 1), ids(0)],
    ['rtx: -1 is the only GPU', RTX, [], req('a', -1), ids(0)],
    ['previous ids are reused when free', H100, [claim('x', ids(0))], req('a', 2, { previous: ids(6, 7) }), ids(6, 7)],
    ['previous order does not matter', H100, [], req('a', 2, { previous: ids(7, 5) }), ids(5, 7)],
    ['previous partly taken: fresh choice', H100, [claim('x', ids(6))], req('a', 2, { previous: ids(6, 7) }), ids(0, 1)],
    ['previous of a different size: fresh choice', H100, [], req('a', 2, { previous: ids(5) }), ids(0, 1)],
    ['previous naming a GPU that is gone: fresh choice', A100, [], req('a', 2, { previous: ['3', '9'] }), ids(0, 1)],
    ['own claim is ignored (idempotent)', H100, [claim('a', ids(0, 1))], req('a', 2), ids(0, 1)],
    ['own claim does not block -1', H100, [claim('a', ids(0, 1, 2, 3, 4, 5, 6, 7))], req('a', -1), ids(0, 1, 2, 3, 4, 5, 6, 7)],
    ['another replica of the same service is not own', H100, [claim('a', ids(0, 1), 1)], req('a', 2), ids(3, 4)],
  ])('%s', (_name, gpus, claims, request, want) => {
    expect(allocateGpus(gpus, claims, request)).toEqual({ kind: 'allocated', gpuIds: want });
  });
});

describe('allocateGpus: rejected (can never fit)', () => {
  it.each<[string, typeof H100, number, RegExp]>([
    ['N > total', H100, 9, /^gpu_count 9 can never fit: this host has 8 GPUs \(8x NVIDIA H100 80GB HBM3\)$/],
    ['N > total on a 1-GPU host', RTX, 2, /^gpu_count 2 can never fit: this host has 1 GPU \(1x NVIDIA GeForce RTX 4090\)$/],
    ['-1 on a GPU-less host', NONE, -1, /^gpu_count -1 asks for every GPU of the host, but this host has no GPUs$/],
    ['N on a GPU-less host', NONE, 1, /^gpu_count 1 asks for 1 GPU, but this host has no GPUs$/],
    ['count below -1', H100, -2, /^gpu_count -2 is invalid/],
    ['fractional count', H100, 1.5, /^gpu_count 1.5 is invalid/],
  ])('%s', (_name, gpus, gpuCount, reason) => {
    const verdict = allocateGpus(gpus, [], req('a', gpuCount));
    expect(verdict.kind).toBe('rejected');
    expect(verdict.kind === 'rejected' && verdict.reason).toMatch(reason);
  });

  it('is rejected even when the GPUs are also held (never beats pending)', () => {
    expect(allocateGpus(A100, [claim('x', ids(0, 1, 2, 3))], req('a', 5)).kind).toBe('rejected');
  });
});

describe('allocateGpus: pending, -1 vs N contention', () => {
  it.each<[string, typeof H100, GpuClaim[], AllocationRequest, string, string[]]>([
    [
      'N waits for a -1 holder',
      H100,
      [claim('all-gpus', ids(0, 1, 2, 3, 4, 5, 6, 7))],
      req('a', 1),
      'waiting for 1 GPU: 8 of 8 are held by all-gpus (0,1,2,3,4,5,6,7)',
      ['all-gpus'],
    ],
    [
      '-1 waits for one N holder',
      H100,
      [claim('llama', ids(4, 5))],
      req('all-gpus', -1),
      'waiting for all 8 GPUs: 2 of 8 are held by llama (4,5)',
      ['llama'],
    ],
    [
      '-1 waits even for a single held GPU',
      RTX,
      [claim('sdxl', ids(0))],
      req('all-gpus', -1),
      'waiting for all 1 GPU: 1 of 1 are held by sdxl (0)',
      ['sdxl'],
    ],
    [
      'names every holder, by lowest GPU index, replicas merged',
      A100,
      [claim('sdxl', ids(2)), claim('llama-70b', ids(1), 1), claim('llama-70b', ids(0), 0)],
      req('a', 2),
      'waiting for 2 GPUs: 3 of 4 are held by llama-70b (0,1), sdxl (2)',
      ['llama-70b', 'sdxl'],
    ],
    [
      'ignores claims naming GPUs this host does not have',
      A100,
      [claim('ghost', ['7']), claim('x', ids(0, 1, 2))],
      req('a', 2),
      'waiting for 2 GPUs: 3 of 4 are held by x (0,1,2)',
      ['x'],
    ],
  ])('%s', (_name, gpus, claims, request, reason, holders) => {
    expect(allocateGpus(gpus, claims, request)).toEqual({ kind: 'pending', reason, holders });
  });
});

describe('allocateGpus: unhealthy GPUs', () => {
  // rtxpro6000x4 (bus 16 34 | ac ca → groups low: 0-1, high: 2-3) with GPU 1 lost, as the
  // inventory reports rtxpro6000x4-gpu1-lost (test/unit/host/inventory.test.ts).
  const LOST = 'nvidia-smi cannot open it: Unknown Error';
  const PRO = fixtureGpus('rtxpro6000x4').map((g) => (g.id === '1' ? { ...g, unhealthy: LOST } : g));
  const allocated = (gpuIds: string[]): AllocationVerdict => ({ kind: 'allocated', gpuIds });
  const pending = (reason: string, holders: string[] = []): AllocationVerdict => ({ kind: 'pending', reason, holders });

  it.each<[string, GpuClaim[], AllocationRequest, AllocationVerdict]>([
    ['1 GPU avoids the unhealthy one', [claim('x', ids(0))], req('a', 1), allocated(ids(2))],
    ['2 GPUs: the low group is broken, so the high group', [], req('a', 2), allocated(ids(2, 3))],
    ['3 GPUs: the healthy ones, across groups', [], req('a', 3), allocated(ids(0, 2, 3))],
    ['previous GPUs that include the unhealthy one are not reused', [], req('a', 2, { previous: ids(0, 1) }), allocated(ids(2, 3))],
    ['previous healthy GPUs are reused', [], req('a', 1, { previous: ids(3) }), allocated(ids(3))],
    ['-1 takes every healthy GPU', [], req('all', -1), allocated(ids(0, 2, 3))],
    ['4 GPUs wait (not rejected): one is unhealthy', [], req('a', 4), pending(`waiting for 4 GPUs: 1 of 4 is unhealthy (1: ${LOST})`)],
    [
      'the reason names the unhealthy GPU and the holders',
      [claim('llm', ids(0, 2)), claim('embed', ids(3))],
      req('a', 1),
      pending(`waiting for 1 GPU: 1 of 4 is unhealthy (1: ${LOST}); 3 of 4 are held by llm (0,2), embed (3)`, ['llm', 'embed']),
    ],
    ['a claim on the unhealthy GPU counts as held', [claim('old', ids(1))], req('a', 4), pending(`waiting for 4 GPUs: 1 of 4 is unhealthy (1: ${LOST}); 1 of 4 are held by old (1)`, ['old'])],
  ])('%s', (_name, claims, request, want) => {
    expect(allocateGpus(PRO, claims, request)).toEqual(want);
  });

  it('-1 on a host whose every GPU is unhealthy waits, naming them', () => {
    const sick = RTX.map((g) => ({ ...g, unhealthy: 'nvidia-smi prints "GPU requires reset" for temperature.gpu' }));
    expect(allocateGpus(sick, [], req('all', -1))).toEqual(pending('waiting for all 1 GPU: 1 of 1 is unhealthy (0: nvidia-smi prints "GPU requires reset" for temperature.gpu)'));
  });

  it('the GPU returns to the pool when it is healthy again', () => {
    expect(allocateGpus(fixtureGpus('rtxpro6000x4'), [claim('x', ids(0))], req('a', 1))).toEqual(allocated(ids(1)));
  });

  it.each<[string, GpuClaim[], AllocationRequest, string[], ReturnType<typeof restartVerdict>]>([
    ['healthy GPUs: keep', [claim('a', ids(0))], req('a', 1), ids(0), { kind: 'keep' }],
    ['no GPUs: keep', [], req('a', 0), [], { kind: 'keep' }],
    ['unhealthy, healthy ones free: move', [claim('a', ids(1))], req('a', 1), ids(1), { kind: 'move', reason: `GPU 1 is unhealthy (${LOST}): restarting on healthy GPUs` }],
    ['a GPU the host no longer has: move', [claim('a', ids(5))], req('a', 1), ids(5), { kind: 'move', reason: 'GPU 5 is not in the host inventory: restarting on healthy GPUs' }],
    [
      'unhealthy, the rest held: wait, naming both',
      [claim('a', ids(0, 1)), claim('b', ids(2, 3))],
      req('a', 2),
      ids(0, 1),
      { kind: 'wait', reason: `GPU 1 is unhealthy (${LOST}); waiting for 2 GPUs: 1 of 4 is unhealthy (1: ${LOST}); 2 of 4 are held by b (2,3)` },
    ],
  ])('restartVerdict: %s', (_name, claims, request, held, want) => {
    expect(restartVerdict(PRO, claims, request, held)).toEqual(want);
  });

  it('unhealthyHeld names the unhealthy GPUs among a replica\'s', () => {
    expect(unhealthyHeld(ids(0, 1), PRO)).toEqual([{ id: '1', reason: LOST }]);
    expect(unhealthyHeld(ids(2, 3), PRO)).toEqual([]);
  });
});

describe('allocateGpus: freeing and re-pending', () => {
  it('a waiter gets the GPUs once the holder frees them, and the holder then waits', () => {
    let claims: GpuClaim[] = [];
    const take = (r: AllocationRequest): AllocationVerdict => {
      const v = allocateGpus(H100, claims, r);
      if (v.kind === 'allocated') claims = [...claims, { serviceId: r.serviceId, serviceSlug: r.serviceSlug, replicaIndex: r.replicaIndex, gpuIds: v.gpuIds }];
      return v;
    };
    const free = (slug: string) => (claims = claims.filter((c) => c.serviceSlug !== slug));

    expect(take(req('big', -1))).toEqual({ kind: 'allocated', gpuIds: ids(0, 1, 2, 3, 4, 5, 6, 7) });
    expect(take(req('small', 2))).toMatchObject({ kind: 'pending', holders: ['big'] });
    free('big');
    expect(take(req('small', 2))).toEqual({ kind: 'allocated', gpuIds: ids(0, 1) });
    expect(take(req('big', -1))).toEqual({
      kind: 'pending',
      reason: 'waiting for all 8 GPUs: 2 of 8 are held by small (0,1)',
      holders: ['small'],
    });
    free('small');
    expect(take(req('big', -1))).toEqual({ kind: 'allocated', gpuIds: ids(0, 1, 2, 3, 4, 5, 6, 7) });
  });
});

describe('allocateGpus: restart keeps GPUs', () => {
  it('a restarted replica gets its previous GPUs back although lower ones are free', () => {
    const others = [claim('x', ids(0, 1, 2))];
    const first = allocateGpus(H100, others, req('a', 2, { replicaIndex: 1 }));
    expect(first).toEqual({ kind: 'allocated', gpuIds: ids(3, 4) });
    // The GPUs of x are released while a restarts: the decision must not move a to 0,1.
    const again = allocateGpus(H100, [], req('a', 2, { replicaIndex: 1, previous: ids(3, 4) }));
    expect(again).toEqual({ kind: 'allocated', gpuIds: ids(3, 4) });
  });

  it('after an agent restart, claims rebuilt from labels keep every replica on its GPUs', () => {
    const containers = [
      { labels: { 'cloud.cyberun.service-id': 's1', 'cloud.cyberun.service-slug': 'llama', 'cloud.cyberun.replica': '0', 'cloud.cyberun.gpus': '4,5' }, gpuDeviceIds: ['4', '5'] },
      { labels: { 'cloud.cyberun.service-id': 's2', 'cloud.cyberun.service-slug': 'sdxl', 'cloud.cyberun.replica': '0', 'cloud.cyberun.gpus': '0' }, gpuDeviceIds: ['0'] },
    ];
    const claims = claimsFromContainers(containers);
    expect(allocateGpus(H100, claims, { serviceId: 's1', serviceSlug: 'llama', replicaIndex: 0, gpuCount: 2 })).toEqual({ kind: 'allocated', gpuIds: ids(1, 2) });
    expect(allocateGpus(H100, claims, { serviceId: 's1', serviceSlug: 'llama', replicaIndex: 0, gpuCount: 2, previous: ids(4, 5) })).toEqual({ kind: 'allocated', gpuIds: ids(4, 5) });
    expect(allocateGpus(H100, claims, { serviceId: 's3', serviceSlug: 'new', replicaIndex: 0, gpuCount: 2, previous: ids(4, 5) })).toEqual({ kind: 'allocated', gpuIds: ids(1, 2) });
  });
});

/** mulberry32: a small seeded PRNG, so the sequence is random-looking but the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function simulate(seed: number, steps: number): string[] {
  const rand = prng(seed);
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const services = [
    { slug: 'all', count: -1 },
    { slug: 'one', count: 1 },
    { slug: 'two', count: 2 },
    { slug: 'three', count: 3 },
    { slug: 'four', count: 4 },
    { slug: 'eight', count: 8 },
  ];
  let claims: GpuClaim[] = [];
  const trace: string[] = [];
  for (let step = 0; step < steps; step++) {
    if (claims.length > 0 && rand() < 0.4) {
      const gone = pick(claims);
      claims = claims.filter((c) => c !== gone);
      trace.push(`free ${gone.serviceSlug}/${gone.replicaIndex}`);
    } else {
      const svc = pick(services);
      const replicaIndex = Math.floor(rand() * 3);
      const own = claims.find((c) => c.serviceSlug === svc.slug && c.replicaIndex === replicaIndex);
      const request = { serviceId: `id-${svc.slug}`, serviceSlug: svc.slug, replicaIndex, gpuCount: svc.count, previous: own?.gpuIds };
      const verdict = allocateGpus(H100, claims, request);
      const heldByOthers = new Set(claims.filter((c) => c !== own).flatMap((c) => c.gpuIds));
      const freeCount = H100.length - heldByOthers.size;
      const wanted = svc.count === -1 ? H100.length : svc.count;
      if (verdict.kind === 'allocated') {
        expect(verdict.gpuIds).toHaveLength(wanted);
        if (own) expect(verdict.gpuIds).toEqual(own.gpuIds); // re-allocation keeps what it held
        claims = [...claims.filter((c) => c !== own), { serviceId: request.serviceId, serviceSlug: svc.slug, replicaIndex, gpuIds: verdict.gpuIds }];
      } else {
        expect(verdict.kind).toBe('pending'); // never rejected: every count fits 8 GPUs
        expect(freeCount).toBeLessThan(wanted); // pending only when it really does not fit now
      }
      trace.push(`${svc.slug}/${replicaIndex} ${verdict.kind === 'allocated' ? verdict.gpuIds.join(',') : 'pending'}`);
    }
    // Invariant after every step: no GPU is given to two replicas, every id exists.
    const all = claims.flatMap((c) => c.gpuIds);
    expect(new Set(all).size, `overlap after step ${step}: ${JSON.stringify(claims)}`).toBe(all.length);
    expect(all.every((id) => H100.some((g) => g.id === id))).toBe(true);
  }
  return trace;
}

describe('allocateGpus: many services and replicas on 8 GPUs (seeded random sequences)', () => {
  it.each([1, 2, 3, 42, 1337, 20240601])('seed %i: 400 steps, never an overlap, same trace twice', (seed) => {
    const trace = simulate(seed, 400);
    expect(trace.some((t) => t.endsWith('pending'))).toBe(true);
    expect(trace.some((t) => /\d$/.test(t))).toBe(true);
    expect(simulate(seed, 400)).toEqual(trace);
  });
});

describe('claimsFromContainers', () => {
  const L = (id: string | undefined, slug: string | undefined, replica: string | undefined, gpus?: string) => {
    const labels: Record<string, string> = {};
    if (id !== undefined) labels['cloud.cyberun.service-id'] = id;
    if (slug !== undefined) labels['cloud.cyberun.service-slug'] = slug;
    if (replica !== undefined) labels['cloud.cyberun.replica'] = replica;
    if (gpus !== undefined) labels['cloud.cyberun.gpus'] = gpus;
    return labels;
  };
  it.each<[string, { labels: Record<string, string>; gpuDeviceIds: string[] }[], GpuClaim[]]>([
    ['gpus label', [{ labels: L('s1', 'llama', '0', '0,1'), gpuDeviceIds: [] }], [{ serviceId: 's1', serviceSlug: 'llama', replicaIndex: 0, gpuIds: ['0', '1'] }]],
    ['label wins over device ids', [{ labels: L('s1', 'llama', '2', ' 3 , 4 '), gpuDeviceIds: ['9'] }], [{ serviceId: 's1', serviceSlug: 'llama', replicaIndex: 2, gpuIds: ['3', '4'] }]],
    ['falls back to device ids', [{ labels: L('s1', 'llama', '1'), gpuDeviceIds: ['5', '6'] }], [{ serviceId: 's1', serviceSlug: 'llama', replicaIndex: 1, gpuIds: ['5', '6'] }]],
    ['slug falls back to the id', [{ labels: L('s1', undefined, '0', '2'), gpuDeviceIds: [] }], [{ serviceId: 's1', serviceSlug: 's1', replicaIndex: 0, gpuIds: ['2'] }]],
    ['not ours: no service id', [{ labels: L(undefined, 'x', '0', '0'), gpuDeviceIds: ['0'] }], []],
    ['unreadable replica', [{ labels: L('s1', 'x', 'one', '0'), gpuDeviceIds: [] }], []],
    ['no GPUs', [{ labels: L('s1', 'x', '0', ''), gpuDeviceIds: [] }, { labels: L('s2', 'y', '0'), gpuDeviceIds: [] }], []],
    [
      'same replica twice (replace in progress) merges; sorted by service then replica',
      [
        { labels: L('s2', 'b', '1', '3'), gpuDeviceIds: [] },
        { labels: L('s1', 'a', '0', '1'), gpuDeviceIds: [] },
        { labels: L('s2', 'b', '0', '2'), gpuDeviceIds: [] },
        { labels: L('s1', 'a', '0', '1,0'), gpuDeviceIds: [] },
      ],
      [
        { serviceId: 's1', serviceSlug: 'a', replicaIndex: 0, gpuIds: ['1', '0'] },
        { serviceId: 's2', serviceSlug: 'b', replicaIndex: 0, gpuIds: ['2'] },
        { serviceId: 's2', serviceSlug: 'b', replicaIndex: 1, gpuIds: ['3'] },
      ],
    ],
  ])('%s', (_name, containers, want) => {
    expect(claimsFromContainers(containers)).toEqual(want);
  });
});

describe('gpuEnvironment', () => {
  const e = (env_name: string, env_value: string) => ({ env_name, env_value });
  it.each<[string, ReturnType<typeof e>[], { env: string[]; dropped: string[] }]>([
    ['plain variables pass', [e('A', '1')], { env: ['A=1'], dropped: [] }],
    ['nothing in, nothing out', [], { env: [], dropped: [] }],
    [
      'env_config cannot widen GPU access',
      [
        e('NVIDIA_VISIBLE_DEVICES', 'all'),
        e('CUDA_VISIBLE_DEVICES', '0,1,2'),
        e('NVIDIA_DRIVER_CAPABILITIES', 'all'),
        e('NVIDIA_REQUIRE_CUDA', 'cuda>=12'),
        e('NVIDIA_DISABLE_REQUIRE', '1'),
        e('nvidia_visible_devices', 'all'),
        e('MODEL', 'llama'),
      ],
      { env: ['MODEL=llama'], dropped: ['NVIDIA_VISIBLE_DEVICES', 'CUDA_VISIBLE_DEVICES', 'NVIDIA_DRIVER_CAPABILITIES', 'NVIDIA_REQUIRE_CUDA', 'NVIDIA_DISABLE_REQUIRE', 'nvidia_visible_devices'] },
    ],
    ['order kept, values untouched', [e('B', 'x=y'), e('A', '')], { env: ['B=x=y', 'A='], dropped: [] }],
    ['a name dropped twice is reported once', [e('NVIDIA_VISIBLE_DEVICES', '1'), e('NVIDIA_VISIBLE_DEVICES', '2')], { env: [], dropped: ['NVIDIA_VISIBLE_DEVICES'] }],
    ['look-alikes are kept', [e('NVIDIA', '1'), e('MY_NVIDIA_X', '1'), e('MY_CUDA_VISIBLE_DEVICES', '1')], { env: ['NVIDIA=1', 'MY_NVIDIA_X=1', 'MY_CUDA_VISIBLE_DEVICES=1'], dropped: [] }],
    [
      'every NVIDIA_* name and every vendor\'s device selection is dropped',
      ['NVIDIA_GDS', 'NVIDIA_MOFED', 'NVIDIA_NVSWITCH', 'NVIDIA_GDRCOPY', 'NVIDIA_IMEX_CHANNELS', 'NVIDIA_MIG_CONFIG_DEVICES', 'NVIDIA_MIG_MONITOR_DEVICES', 'NVIDIA_VISIBLE', 'ROCR_VISIBLE_DEVICES', 'HIP_VISIBLE_DEVICES', 'GPU_DEVICE_ORDINAL', 'ZE_AFFINITY_MASK', 'ONEAPI_DEVICE_SELECTOR', 'HABANA_VISIBLE_DEVICES', 'NEURON_RT_VISIBLE_CORES', 'TPU_VISIBLE_CHIPS', 'CUDA_MPS_PIPE_DIRECTORY', 'cuda_visible_devices'].map((n) => e(n, 'all')),
      { env: [], dropped: ['NVIDIA_GDS', 'NVIDIA_MOFED', 'NVIDIA_NVSWITCH', 'NVIDIA_GDRCOPY', 'NVIDIA_IMEX_CHANNELS', 'NVIDIA_MIG_CONFIG_DEVICES', 'NVIDIA_MIG_MONITOR_DEVICES', 'NVIDIA_VISIBLE', 'ROCR_VISIBLE_DEVICES', 'HIP_VISIBLE_DEVICES', 'GPU_DEVICE_ORDINAL', 'ZE_AFFINITY_MASK', 'ONEAPI_DEVICE_SELECTOR', 'HABANA_VISIBLE_DEVICES', 'NEURON_RT_VISIBLE_CORES', 'TPU_VISIBLE_CHIPS', 'CUDA_MPS_PIPE_DIRECTORY', 'cuda_visible_devices'] },
    ],
  ])('%s', (_name, envConfig, want) => {
    expect(gpuEnvironment(envConfig)).toEqual(want);
  });
});
