import { stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The docker CLI's config file the agent reads registry credentials from (registry-auth.ts). */
export function dockerConfigFile(dockerConfigDir?: string): string {
  return join(dockerConfigDir ?? process.env['DOCKER_CONFIG'] ?? join(homedir(), '.docker'), 'config.json');
}

/**
 * Calls `onChange` when the host's registry credentials file changes (`docker login`, an edited
 * `auths`, a new credential helper): polled with one stat every `intervalMs`, as a change must be
 * seen through editors that replace the file and through bind mounts, where inotify is unreliable.
 * Appearing and disappearing count as changes; the first look only records the state.
 */
export class CredentialsWatch {
  private timer: NodeJS.Timeout | undefined;
  private last: string | undefined;
  private looking = false;

  constructor(
    private readonly file: string,
    private readonly onChange: () => void,
    private readonly intervalMs = 5_000,
  ) {}

  async start(): Promise<void> {
    this.last = await this.fingerprint();
    this.timer = setInterval(() => void this.look(), this.intervalMs);
    this.timer.unref?.();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One look now (the timer calls it); resolves once the look is done. */
  async look(): Promise<void> {
    if (this.looking) return;
    this.looking = true;
    try {
      const now = await this.fingerprint();
      if (now !== this.last) {
        this.last = now;
        this.onChange();
      }
    } finally {
      this.looking = false;
    }
  }

  private async fingerprint(): Promise<string> {
    const s = await stat(this.file).catch(() => undefined);
    return s === undefined ? 'absent' : `${s.ino}:${s.size}:${s.mtimeMs}`;
  }
}
