import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { AgentCore } from '../agent-core.js';
import type { Logger } from '../log.js';
import type { DesiredService, ServiceDefinition } from '../service-definition/types.js';
import { formatIssues } from '../service-definition/issue-text.js';
import { validateServiceDefinition } from '../service-definition/schema.js';

export interface ServicesDirOptions {
  dir: string;
  core: AgentCore;
  logger: Logger;
  /** Safety-net rescan interval; fs.watch events trigger a rescan sooner. */
  pollMs?: number;
}

/**
 * Standalone mode (like the kubelet's static pods): every `*.json`, `*.yaml` or `*.yml` file in a
 * directory holds one service definition; the full set is the desired state. Service ids are
 * `local-<service_slug>`.
 *
 * A file that stops parsing or validating keeps its last valid definition running (an editor's
 * half-written save must not take a service down) and the problem is logged with every path.
 * Deleting the file removes the service.
 */
export class ServicesDirSource {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private revision = 0;
  private lastKey = '';
  private readonly lastValid = new Map<string, ServiceDefinition>();
  private readonly reported = new Map<string, string>();
  private scanning: Promise<void> | undefined;

  constructor(private readonly options: ServicesDirOptions) {}

  async start(): Promise<void> {
    await this.scan();
    try {
      this.watcher = watch(this.options.dir, () => {
        clearTimeout(this.debounce);
        this.debounce = setTimeout(() => void this.scan(), 150);
      });
      this.watcher.on('error', (err) => this.options.logger.warn({ err }, 'services dir watch failed; polling only'));
    } catch (err) {
      this.options.logger.warn({ err, dir: this.options.dir }, 'cannot watch services dir; polling only');
    }
    this.timer = setInterval(() => void this.scan(), this.options.pollMs ?? 5_000);
    this.timer.unref?.();
  }

  stop(): void {
    this.watcher?.close();
    clearInterval(this.timer);
    clearTimeout(this.debounce);
  }

  /** Reads the directory and applies the set if it changed. Concurrent calls share one scan. */
  scan(): Promise<void> {
    this.scanning ??= this.doScan().finally(() => {
      this.scanning = undefined;
    });
    return this.scanning;
  }

  private async doScan(): Promise<void> {
    const { dir, logger } = this.options;
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => /\.(json|ya?ml)$/i.test(n) && !n.startsWith('.')).sort();
    } catch (err) {
      logger.error({ err, dir }, 'cannot read services dir; keeping the current services');
      return;
    }
    const bySlug = new Map<string, { file: string; definition: ServiceDefinition }>();
    for (const name of names) {
      const file = path.join(dir, name);
      const definition = await this.load(file);
      if (!definition) continue;
      const taken = bySlug.get(definition.service_slug);
      if (taken) {
        this.report(file, `service_slug "${definition.service_slug}" is already defined in ${taken.file}; this file is ignored`);
        continue;
      }
      bySlug.set(definition.service_slug, { file, definition });
    }
    for (const file of [...this.lastValid.keys()]) if (!names.includes(path.basename(file))) this.lastValid.delete(file);
    const services: DesiredService[] = [...bySlug.values()].map(({ definition }) => ({ id: `local-${definition.service_slug}`, definition }));
    const key = JSON.stringify(services);
    if (key === this.lastKey) return;
    this.lastKey = key;
    this.revision += 1;
    this.options.core.applyDesired(services, this.revision, 'services-dir');
  }

  private async load(file: string): Promise<ServiceDefinition | undefined> {
    let input: unknown;
    try {
      const text = await readFile(file, 'utf8');
      input = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text);
    } catch (err) {
      return this.fallback(file, `cannot parse: ${(err as Error).message}`);
    }
    const result = validateServiceDefinition(input);
    if (!result.ok) return this.fallback(file, `invalid service definition:\n${formatIssues(result.issues)}`);
    this.reported.delete(file);
    this.lastValid.set(file, result.value);
    return result.value;
  }

  private fallback(file: string, problem: string): ServiceDefinition | undefined {
    const kept = this.lastValid.get(file);
    this.report(file, kept ? `${problem}\n(keeping the last valid definition of ${kept.service_slug})` : problem);
    return kept;
  }

  /** Logs a problem once per distinct message, not on every rescan. */
  private report(file: string, message: string): void {
    if (this.reported.get(file) === message) return;
    this.reported.set(file, message);
    this.options.logger.error({ file }, message);
  }
}
