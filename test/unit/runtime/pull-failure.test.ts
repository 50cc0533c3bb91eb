import { describe, expect, it } from 'vitest';
import { isNoSpacePullFailure, isTransientPullFailure } from '../../../src/runtime/pull-failure.js';

describe('isTransientPullFailure', () => {
  it.each([
    // What Docker Engine 20.10 answers, as seen on this project's hosts and in moby's issue tracker.
    ['Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused', 500],
    ['Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io on 127.0.0.53:53: server misbehaving', 500],
    ['Get "https://ghcr.io/v2/": dial tcp: lookup ghcr.io: Temporary failure in name resolution', 500],
    ['Get "https://registry-1.docker.io/v2/": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)', 500],
    ['Get "https://nvcr.io/v2/": net/http: TLS handshake timeout', 500],
    ['read tcp 10.0.0.2:41234->104.18.121.25:443: read: connection reset by peer', undefined],
    ['unexpected EOF', undefined],
    ['toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading', 500],
    ['received unexpected HTTP status: 503 Service Unavailable', 500],
    ['dial tcp 10.9.9.9:443: connect: no route to host', 500],
    ['something no one has seen before', 500],
    ['something no one has seen before', undefined],
  ])('transient: %s (%s)', (message, status) => {
    expect(isTransientPullFailure(message, status)).toBe(true);
  });

  it.each([
    ['manifest for 127.0.0.1:5000/nope:1 not found: manifest unknown: manifest unknown', 404],
    ['pull access denied for acme/nope, repository does not exist or may require \'docker login\': denied: requested access to the resource is denied', 404],
    ['Head "https://ghcr.io/v2/acme/private/manifests/1": unauthorized', 401],
    ['unauthorized: authentication required', 500],
    ['invalid reference format: repository name must be lowercase', 400],
    ['no matching manifest for linux/amd64 in the manifest list entries', 404],
    ['anything the engine says with a 404', 404],
  ])('definitive: %s (%s)', (message, status) => {
    expect(isTransientPullFailure(message, status)).toBe(false);
  });
});

describe('isNoSpacePullFailure', () => {
  it.each([
    // https://github.com/NVIDIA-NeMo/Speech/issues/1029
    ['failed to register layer: Error processing tar file(exit status 1): write /opt/conda/lib/python3.6/site-packages/torch/lib/libtorch.so: no space left on device', true],
    // https://github.com/docker/for-win/issues/13751
    ['failed to register layer: no space left on device', true],
    // https://github.com/moby/moby/issues/29508
    ['failed to register layer: ApplyLayer exit status 1 stdout:  stderr: mkdir /root/.npm/registry.npmjs.org/har-validator: no space left on device', true],
    ['write /var/lib/docker/tmp/GetImageBlob123: ENOSPC', true],
    ['manifest for 127.0.0.1:5000/nope:1 not found: manifest unknown: manifest unknown', false],
    ['unexpected EOF', false],
  ])('%s → %s', (message, want) => {
    expect(isNoSpacePullFailure(message)).toBe(want);
    // Out of space is never definitive: it is retried after image GC made room.
    if (want) expect(isTransientPullFailure(message, 500)).toBe(true);
  });
});
