import type { ContainerCreateRequest, ContainerImageUse, ContainerRuntime, EngineImage } from '../../src/runtime/container-runtime.js';
import type { ObservedContainer } from '../../src/domain/observed-container.js';
import type { LogEntry } from '../../src/domain/log-entry.js';

/**
 * An in-memory ContainerRuntime for component tests: containers live in a map, creates are
 * recorded, starts succeed, and every call yields to the event loop first (as real IO would), so
 * ordering races between workers show up.
 */
export class FakeRuntime implements ContainerRuntime {
  readonly publishesPorts = false;
  readonly containers = new Map<string, ObservedContainer>();
  readonly created: ContainerCreateRequest[] = [];
  private seq = 0;

  private tick(): Promise<void> {
    return new Promise((r) => setImmediate(r));
  }

  add(c: Partial<ObservedContainer> & { id: string; labels: Record<string, string> }): void {
    this.containers.set(c.id, {
      name: c.id, image: 'img', state: 'running', createdAt: Date.now(), startedAt: new Date().toISOString(), finishedAt: undefined,
      exitCode: undefined, oomKilled: false, error: undefined, ipAddress: '10.99.0.1', publishedPort: undefined, gpuDeviceIds: [], ...c,
    });
  }

  async ping(): Promise<void> { await this.tick(); }
  async ensureNetwork(): Promise<void> { await this.tick(); }
  async hasImage(): Promise<boolean> { await this.tick(); return true; }
  async pullImage(): Promise<void> { await this.tick(); }
  async createContainer(spec: ContainerCreateRequest): Promise<string> {
    await this.tick();
    this.created.push(spec);
    const id = `fake-${++this.seq}`;
    this.add({ id, name: spec.name, labels: spec.labels, state: 'created', startedAt: '0001-01-01T00:00:00Z', gpuDeviceIds: spec.gpu.kind === 'devices' ? spec.gpu.ids : [] });
    return id;
  }
  async startContainer(id: string): Promise<void> {
    await this.tick();
    const c = this.containers.get(id);
    if (c) this.containers.set(id, { ...c, state: 'running', startedAt: new Date().toISOString() });
  }
  async stopContainer(id: string): Promise<void> {
    await this.tick();
    const c = this.containers.get(id);
    if (c) this.containers.set(id, { ...c, state: 'exited', exitCode: 0, finishedAt: new Date().toISOString() });
  }
  async removeContainer(id: string): Promise<void> { await this.tick(); this.containers.delete(id); }
  async renameContainer(id: string, name: string): Promise<void> {
    await this.tick();
    const c = this.containers.get(id);
    if (c) this.containers.set(id, { ...c, name });
  }
  async inspectContainer(id: string): Promise<ObservedContainer | undefined> { await this.tick(); return this.containers.get(id); }
  async listContainers(labels: Record<string, string>): Promise<ObservedContainer[]> {
    await this.tick();
    return [...this.containers.values()].filter((c) => Object.entries(labels).every(([k, v]) => (v === '' ? k in c.labels : c.labels[k] === v)));
  }
  watchEvents(): void {}
  async logsTail(): Promise<string> { await this.tick(); return ''; }
  /** Log entries per container id for logStream (no follow: the list, then the end). */
  readonly logs = new Map<string, LogEntry[]>();
  async *logStream(id: string): AsyncGenerator<LogEntry> { await this.tick(); yield* this.logs.get(id) ?? []; }
  replicaEndpoint(_c: ObservedContainer, _exposedPort: number): { host: string; port: number } | undefined { return undefined; }
  /** Images for image GC tests; containers use the image whose id is their `image`. */
  readonly images: EngineImage[] = [];
  async dataRoot(): Promise<string> { await this.tick(); return '/var/lib/docker'; }
  async listImages(): Promise<EngineImage[]> { await this.tick(); return this.images.map((i) => ({ ...i })); }
  async containerImages(): Promise<ContainerImageUse[]> { await this.tick(); return [...this.containers.values()].map((c) => ({ containerId: c.id, imageId: c.image })); }
  async removeImage(ref: string): Promise<void> {
    await this.tick();
    const i = this.images.findIndex((img) => img.repoTags.includes(ref));
    if (i >= 0) this.images.splice(i, 1);
  }
}
