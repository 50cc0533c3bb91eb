import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PulledImages } from '../../../src/reconcile/pulled-images.js';
import { isAgentError } from '../../../src/errors.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cyberun-pulled-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('PulledImages', () => {
  it('survives a restart: what was pulled, and when it was last used', async () => {
    const a = new PulledImages(dir);
    await a.load();
    a.recordPull('vllm/vllm-openai:v0.6.0', 1000);
    a.recordPull('tgi:2.4', 2000);
    a.touch(['vllm/vllm-openai:v0.6.0', 'not-pulled:1'], 5000);
    a.forget(['tgi:2.4']);
    await a.flush();

    const b = new PulledImages(dir);
    await b.load();
    expect(b.list()).toEqual([{ ref: 'vllm/vllm-openai:v0.6.0', pulledAt: 1000, lastUsedAt: 5000 }]);
    expect(b.has('tgi:2.4')).toBe(false);
    expect(b.has('not-pulled:1')).toBe(false);
    expect(JSON.parse(await readFile(path.join(dir, 'pulled-images.json'), 'utf8'))).toEqual({ version: 1, images: b.list() });
  });

  it('a touch never moves lastUsedAt back, and does not write when nothing changed', async () => {
    const a = new PulledImages(dir);
    a.recordPull('x:1', 5000);
    a.touch(['x:1'], 4000);
    expect(a.list()).toEqual([{ ref: 'x:1', pulledAt: 5000, lastUsedAt: 5000 }]);
    await a.flush(); // the background save finishes before the directory is removed
  });

  it('a missing file is an empty record; a corrupt one is STATE_IO naming the file and the fix', async () => {
    const a = new PulledImages(dir);
    await a.load();
    expect(a.list()).toEqual([]);
    await writeFile(path.join(dir, 'pulled-images.json'), '{"version":1,"images":[{"ref":"x"}]}');
    const err = await a.load().then(() => undefined, (e: unknown) => e);
    expect(isAgentError(err, 'AGENT_ERR_STATE_IO')).toBe(true);
    expect((err as Error).message).toMatch(/pulled-images\.json is corrupt \(images\[0\] \(x\) has no pulledAt\/lastUsedAt\); delete it/);
  });

  it('reports a failed save and keeps going', async () => {
    const errors: unknown[] = [];
    const blocked = path.join(dir, 'file-not-dir');
    await writeFile(blocked, '');
    const a = new PulledImages(path.join(blocked, 'state'), (err) => errors.push(err));
    a.recordPull('x:1', 1);
    await a.flush();
    expect(errors).toHaveLength(1);
    expect(a.list()).toHaveLength(1);
  });
});
