import { spawnSync } from 'node:child_process';
import { openSync, closeSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stdoutIsJournal, withJournalPriority } from '../../src/log.js';
import { repoPath } from '../helpers/repo-root.js';
import { tempDir } from '../helpers/temp-dirs.js';

describe('log lines to the journal: <N> priority prefix', () => {
  it('maps every pino level to its syslog priority and leaves other lines alone', () => {
    const line = (level: string) => `{"level":"${level}","time":"t","msg":"m"}\n`;
    expect(withJournalPriority(line('fatal'))).toBe(`<2>${line('fatal')}`);
    expect(withJournalPriority(line('error'))).toBe(`<3>${line('error')}`);
    expect(withJournalPriority(line('warn'))).toBe(`<4>${line('warn')}`);
    expect(withJournalPriority(line('info'))).toBe(`<6>${line('info')}`);
    expect(withJournalPriority(line('debug'))).toBe(`<7>${line('debug')}`);
    expect(withJournalPriority(line('trace'))).toBe(`<7>${line('trace')}`);
    expect(withJournalPriority('not json\n')).toBe('not json\n');
    expect(withJournalPriority(line('custom'))).toBe(line('custom'));
  });

  it('is off without JOURNAL_STREAM or when it names another stream than stdout', () => {
    expect(stdoutIsJournal({})).toBe(false);
    expect(stdoutIsJournal({ JOURNAL_STREAM: '' })).toBe(false);
    expect(stdoutIsJournal({ JOURNAL_STREAM: '1:1' })).toBe(false);
  });

  it('a process whose stdout is the stream JOURNAL_STREAM names prefixes its lines; redirected elsewhere it does not', async () => {
    const dir = await tempDir('log-journal');
    const script = `import { createLogger } from ${JSON.stringify(repoPath('dist', 'log.js'))};
const log = createLogger({ level: 'debug' });
log.debug('d'); log.info('i'); log.warn('w'); log.error('e'); log.flush();`;
    const run = (file: string, journal: (fileStat: { dev: number; ino: number }) => string): string[] => {
      const fd = openSync(file, 'w');
      try {
        const st = statSync(file);
        const res = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
          stdio: ['ignore', fd, 'pipe'],
          env: { PATH: process.env['PATH'] ?? '', JOURNAL_STREAM: journal(st) },
        });
        expect(res.status, res.stderr.toString()).toBe(0);
      } finally {
        closeSync(fd);
      }
      return readFileSync(file, 'utf8').trim().split('\n');
    };
    const asJournal = run(path.join(dir, 'journal.log'), (st) => `${st.dev}:${st.ino}`);
    expect(asJournal.map((l) => l.slice(0, 3))).toEqual(['<7>', '<6>', '<4>', '<3>']);
    expect(JSON.parse(asJournal[1]!.slice(3))).toMatchObject({ level: 'info', msg: 'i' });
    const redirected = run(path.join(dir, 'other.log'), (st) => `${st.dev}:${st.ino + 1}`);
    expect(redirected.map((l) => l[0])).toEqual(['{', '{', '{', '{']);
  });
});
