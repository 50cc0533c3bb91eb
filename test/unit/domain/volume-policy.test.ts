import { describe, expect, it } from 'vitest';
import { ALWAYS_REFUSED, checkHostPath, refusedBy } from '../../../src/domain/volume-policy.js';

const STATE = '/data/cyberun-state';
const refused = [...ALWAYS_REFUSED, STATE, '/run/docker.sock'];
const roots = ['/data'];

describe('volume policy', () => {
  it.each([
    ['/data/models', undefined],
    ['/data/models/llama', undefined],
    ['/datasets', 'is outside the allowed roots [/data]'],
    ['/data/cyberun-state', 'is never mountable: /data/cyberun-state is refused'],
    ['/data/cyberun-state/desired.json', 'is never mountable: /data/cyberun-state is refused'],
    ['/data', 'is never mountable: it holds /data/cyberun-state, which is refused'],
    ['/var/lib/containerd/io.containerd.snapshotter', 'is never mountable: /var/lib/containerd is refused'],
    ['/var/lib/kubelet/pods', 'is never mountable: /var/lib/kubelet is refused'],
    ['/var', 'is never mountable: it holds /var/run/docker.sock, which is refused'],
    ['/run/user/1000/docker.sock', 'is never mountable: /run/user/*/docker.sock is refused'],
    ['/run/user/1000', 'is never mountable: it holds /run/user/*/docker.sock, which is refused'],
    ['/run/containerd/containerd.sock', 'is never mountable: /run/containerd is refused'],
    ['/usr/local/bin', 'is never mountable: /usr is refused'],
    ['/', 'is never mountable: / is refused'],
    ['/data/../etc', 'must be an absolute, normalized path'],
  ])('%s → %s', (hostPath, problem) => {
    const verdict = checkHostPath(hostPath, undefined, roots, refused, 0);
    if (problem === undefined) expect(verdict).toEqual({ ok: true });
    else expect(verdict).toMatchObject({ ok: false, reason: expect.stringContaining(problem) });
  });

  it('judges a path by where it resolves, and says so', () => {
    expect(checkHostPath('/data/link', '/etc', roots, refused, 2)).toEqual({
      ok: false,
      reason: 'volume_config[2].host_path "/data/link" (resolves to "/etc") is never mountable: /etc is refused to protect the host',
    });
    expect(checkHostPath('/data/link', '/srv/elsewhere', roots, refused, 0)).toMatchObject({ reason: expect.stringContaining('(resolves to "/srv/elsewhere") is outside the allowed roots') });
  });

  it('answers the same for paths outside the roots whether they exist or not (judged before the file system)', () => {
    // The first judgement never sees the file system: it is a function of the written path only.
    expect(checkHostPath('/srv/exists', undefined, roots, refused, 0)).toEqual(checkHostPath('/srv/exists', undefined, roots, refused, 0));
    expect(checkHostPath('/srv/a', undefined, roots, refused, 0)).toMatchObject({ reason: expect.stringContaining('outside the allowed roots') });
  });

  it('an empty allowlist allows nothing', () => {
    expect(checkHostPath('/data/models', undefined, [], refused, 0)).toMatchObject({ reason: expect.stringContaining('allows no host mounts') });
  });

  it.each([
    ['/home/me', undefined],
    ['/runner', undefined],
    ['/run', '/run/docker.sock'],
  ])('refusedBy(%s) → %s', (p, entry) => {
    expect(refusedBy(p, refused)).toBe(entry);
  });
});
