import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SK, startProxyRig, startUpstream, type ProxyRig, type Upstream } from '../helpers/proxy-harness.js';

/**
 * The gateway stops as a mature HTTP server does (found by `npm run bench -- faults`, gateway
 * restarts under load, where requests in progress at a SIGTERM were reset): a proxied request in
 * progress when close() is called is answered in full, and its response says `connection: close`
 * only if it had not started; new connections are refused meanwhile.
 */
describe('gateway close drains requests in progress', () => {
  let up: Upstream;
  let rig: ProxyRig;

  beforeAll(async () => {
    up = await startUpstream();
    rig = await startProxyRig();
    await rig.deploy({ service_slug: 'drain', display_name: 'drain', docker_image: 'busybox:1' }, [{ serviceId: '', replicaIndex: 0, containerId: 'c0', host: '127.0.0.1', port: up.port }]);
  });

  afterAll(async () => {
    await rig?.client.close();
    await up?.close();
  });

  it('a stream in progress at close() gets all its events, then the gateway is gone', async () => {
    const url = `${rig.gateway.url}/api/v1/r/containers/drain/sse?n=5`;
    const res = await request(url, { headers: { authorization: `Bearer ${SK}` } });
    expect(res.statusCode).toBe(200);
    const body = res.body.text();
    const closed = rig.gateway.close();
    // 5 events 100 ms apart: all arrive although close() began after the first.
    const text = await body;
    expect(text.match(/^data: /gm)).toHaveLength(5);
    await closed;
    await expect(request(url, { headers: { authorization: `Bearer ${SK}` } })).rejects.toThrow();
  });
});
