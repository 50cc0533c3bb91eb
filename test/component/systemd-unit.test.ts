import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/config/load-config.js';

const exec = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const UNIT = path.join(ROOT, 'deploy', 'systemd', 'cyberun-agent.service');

async function haveSystemdAnalyze(): Promise<boolean> {
  try {
    await exec('systemd-analyze', ['--version'], { timeout: 10_000 });
    return true;
  } catch {
    const ci = process.env['CI'];
    if (ci !== undefined && ci !== '' && ci !== 'false') {
      throw new Error('systemd-analyze is missing and CI is set: refusing to skip. Install Debian\'s systemd package (see .ci/run).');
    }
    const bar = '!'.repeat(78);
    process.stderr.write(`\n${bar}\n!! SKIPPING systemd unit verification: systemd-analyze not found.\n!! apt-get install -y systemd to run it. With CI set it fails instead.\n${bar}\n\n`);
    return false;
  }
}

const analyze = await haveSystemdAnalyze();

/** The unit's `Key=value` lines (last one wins, as systemd reads single-valued keys). */
function directives(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

describe('deploy/systemd/cyberun-agent.service', () => {
  it.skipIf(!analyze)('passes `systemd-analyze verify` without a single complaint', async () => {
    // verify insists that ExecStart binaries exist: point them at this checkout's launcher.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cyberun-unit-'));
    try {
      const unit = (await readFile(UNIT, 'utf8')).replaceAll('/usr/local/bin/cyberun-agent', path.join(ROOT, 'bin', 'cyberun-agent.js'));
      await writeFile(path.join(dir, 'cyberun-agent.service'), unit);
      const { stdout, stderr } = await exec('systemd-analyze', ['verify', path.join(dir, 'cyberun-agent.service')], { timeout: 20_000 });
      // Unknown keys and bad values are reported on stderr with exit status 0: any output fails.
      expect(`${stdout}${stderr}`.trim()).toBe('');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('restarts on failure, leaves containers alone on stop, reaches the socket and its state dir only', async () => {
    const d = directives(await readFile(UNIT, 'utf8'));
    expect(d.get('Restart')).toBe('on-failure');
    expect(d.get('KillMode')).toBe('process');
    expect(d.get('SupplementaryGroups')).toBe('docker');
    expect(d.get('NoNewPrivileges')).toBe('yes');
    expect(d.get('ProtectSystem')).toBe('strict');
    expect(d.get('ReadWritePaths')).toBe('/var/lib/cyberun-agent');
    expect(d.get('ProtectHome')).toBe('yes');
    expect(d.get('PrivateTmp')).toBe('yes');
    expect(d.get('CapabilityBoundingSet')).toBe('');
    expect(d.get('ExecStart')).toContain('--config /etc/cyberun-agent/cyberun-agent.yaml');
    expect(d.get('ExecStart')).not.toMatch(/agent[-_]key/);
    expect(d.get('ExecStartPost')).toContain('status --healthz --wait');
    expect(d.get('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    // systemd must wait longer than the agent drains (shutdown.drain_timeout default 30s).
    expect(parseDuration(d.get('TimeoutStopSec') ?? '0')).toBeGreaterThan(30_000);
  });
});
