import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentError, ErrorCodes } from '../../src/errors.js';
import { CredentialsWatch } from '../../src/runtime/credentials-watch.js';
import { FakeRuntime } from '../helpers/fake-runtime.js';
import { componentReconciler } from '../helpers/reconciler-harness.js';
import { tempDir } from '../helpers/temp-dirs.js';
import { testDefinition } from '../helpers/test-definition.js';
import { waitFor } from '../helpers/wait-for.js';

/** A registry that refuses the host until it has logged in (the test flips `authorized`). */
class PrivateRegistryRuntime extends FakeRuntime {
  authorized = false;
  pulls = 0;
  override async hasImage(): Promise<boolean> {
    return false;
  }
  override async pullImage(ref = ''): Promise<void> {
    this.pulls++;
    if (!this.authorized) throw new AgentError(ErrorCodes.IMAGE_PULL_FAILED, `pull of image "${ref}" failed: unauthorized: authentication required`);
  }
}

describe('registry credentials', () => {
  const stops: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });

  it('CredentialsWatch sees the file appear, change and go, and not the first look', async () => {
    const dir = await tempDir('creds');
    const file = path.join(dir, 'docker', 'config.json');
    let changes = 0;
    const watch = new CredentialsWatch(file, () => changes++, 60_000);
    stops.push(() => watch.stop());
    await watch.start();
    await watch.look();
    expect(changes).toBe(0);
    await mkdir(path.dirname(file));
    await writeFile(file, '{"auths":{}}');
    await watch.look();
    expect(changes).toBe(1);
    await writeFile(file, '{"auths":{"ghcr.io":{"auth":"dTpw"}}}');
    await watch.look();
    expect(changes).toBe(2);
    await watch.look();
    expect(changes).toBe(2);
  });

  it('a pull refused as unauthorized is tried again at once when the credentials change, not before', async () => {
    const runtime = new PrivateRegistryRuntime();
    const r = componentReconciler(runtime, { agentId: 'creds-test' });
    stops.push(() => r.stop());
    await r.start();
    const image = 'ghcr.io/acme/private:1';
    r.applyDesired([{ id: 'private', definition: testDefinition('private', { docker_image: image }) }], 1, 'test');
    const failed = await waitFor('the service failed with the registry\'s reason', () => {
      const s = r.statusSnapshot().find((x) => x.serviceId === 'private');
      return s?.state === 'failed' ? s : undefined;
    });
    expect(failed.reason).toContain('unauthorized');
    const pullsWhenFailed = runtime.pulls;
    // A definitive failure waits for restart.failed_retry (0 here: never by itself).
    r.recheck();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(runtime.pulls).toBe(pullsWhenFailed);

    runtime.authorized = true;
    r.retryPulls('the registry credentials file changed');
    await waitFor('the replica created after the retry', () => runtime.created.length === 1);
    expect(runtime.pulls).toBe(pullsWhenFailed + 1);
  });
});
