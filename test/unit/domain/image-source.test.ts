import { describe, expect, it } from 'vitest';
import { isMovingTag, pullDecision, registryRefusal, type PullDecision, type PullPolicy } from '../../../src/domain/image-source.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('isMovingTag', () => {
  it.each<[string, boolean]>([
    ['nginx', true],
    ['nginx:latest', true],
    ['127.0.0.1:5000/app', true],
    ['127.0.0.1:5000/app:latest', true],
    ['nginx:1.27', false],
    ['127.0.0.1:5000/app:v2', false],
    [`nginx@${DIGEST}`, false],
    [`nginx:latest@${DIGEST}`, false],
  ])('%s → %s', (ref, moving) => expect(isMovingTag(ref)).toBe(moving));
});

describe('pullDecision (the kubelet default as auto)', () => {
  it.each<[PullPolicy, string, boolean, PullDecision]>([
    ['auto', 'app:latest', true, 'pull'],
    ['auto', 'app', true, 'pull'],
    ['auto', 'app:1.0', true, 'use-present'],
    ['auto', 'app:1.0', false, 'pull'],
    ['auto', `app@${DIGEST}`, true, 'use-present'],
    ['always', 'app:1.0', true, 'pull'],
    ['if-not-present', 'app:latest', true, 'use-present'],
    ['if-not-present', 'app:latest', false, 'pull'],
    ['never', 'app:latest', true, 'use-present'],
    ['never', 'app:1.0', false, 'missing'],
  ])('%s %s present=%s → %s', (policy, ref, present, decision) => expect(pullDecision(policy, ref, present)).toBe(decision));
});

describe('registryRefusal', () => {
  it('allows any registry when the list is empty', () => {
    expect(registryRefusal('evil.example/x:1', [])).toBeUndefined();
  });

  it.each<[string, string | undefined]>([
    ['nginx:1.27', undefined],
    ['library/nginx', undefined],
    ['docker.io/vllm/vllm-openai:latest', undefined],
    ['index.docker.io/vllm/vllm-openai', undefined],
    ['ghcr.io/acme/app:1', undefined],
    ['GHCR.io/acme/app:1', undefined],
    ['quay.io/acme/app:1', 'quay.io'],
    ['127.0.0.1:5000/app', '127.0.0.1:5000'],
    ['localhost/app', 'localhost'],
  ])('%s with [docker.io, ghcr.io] → refused: %s', (ref, refusedHost) => {
    const reason = registryRefusal(ref, ['docker.io', 'ghcr.io']);
    if (refusedHost === undefined) expect(reason).toBeUndefined();
    else expect(reason).toBe(`docker_image "${ref}" comes from the registry ${refusedHost}, which this host does not pull from (pull.allowed_registries: docker.io, ghcr.io); use an image from an allowed registry, or ask the host's operator to allow ${refusedHost}`);
  });
});
