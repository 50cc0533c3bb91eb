import { StringDecoder } from 'node:string_decoder';
import type { LogEntry } from '../domain/log-entry.js';

/**
 * A container's log as entries, read from the engine's multiplexed logs answer (non-TTY containers:
 * frames of `[stream u8, 0, 0, 0, size u32 BE][payload]`, stream 1 stdout, 2 stderr) with
 * `timestamps=true` (each line starts with an RFC 3339 nano timestamp and a space). Pure parsing;
 * pulling chunks on demand, so a consumer that stops asking pauses the engine's stream (TCP).
 *
 * Lines longer than MAX_LINE are cut into pieces of that size (the engine itself splits at 16 KiB),
 * so a container writing without newlines never grows the reader.
 */
export const MAX_LINE = 64 * 1024;

const STREAM_NAMES: Record<number, LogEntry['stream']> = { 1: 'stdout', 2: 'stderr' };

export async function* logEntries(chunks: AsyncIterable<Buffer | string> | Iterable<Buffer | string>): AsyncGenerator<LogEntry> {
  let header = Buffer.alloc(0);
  let want = 0;
  let kind: LogEntry['stream'] = 'stdout';
  const lines = { stdout: new LineSplitter('stdout'), stderr: new LineSplitter('stderr') };
  for await (const raw of chunks) {
    let chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
    while (chunk.length > 0) {
      if (want === 0) {
        const need = 8 - header.length;
        header = Buffer.concat([header, chunk.subarray(0, need)]);
        chunk = chunk.subarray(need);
        if (header.length < 8) break;
        kind = STREAM_NAMES[header[0] ?? 1] ?? 'stdout';
        want = header.readUInt32BE(4);
        header = Buffer.alloc(0);
        continue;
      }
      const take = chunk.subarray(0, want);
      chunk = chunk.subarray(take.length);
      want -= take.length;
      yield* lines[kind].push(take);
    }
  }
  yield* lines.stdout.end();
  yield* lines.stderr.end();
}

class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';

  constructor(private readonly stream: LogEntry['stream']) {}

  *push(bytes: Buffer): Generator<LogEntry> {
    this.pending += this.decoder.write(bytes);
    let newline = this.pending.indexOf('\n');
    while (newline >= 0) {
      yield entryOf(this.stream, this.pending.slice(0, newline));
      this.pending = this.pending.slice(newline + 1);
      newline = this.pending.indexOf('\n');
    }
    while (this.pending.length > MAX_LINE) {
      yield entryOf(this.stream, this.pending.slice(0, MAX_LINE));
      this.pending = this.pending.slice(MAX_LINE);
    }
  }

  *end(): Generator<LogEntry> {
    this.pending += this.decoder.end();
    if (this.pending !== '') yield entryOf(this.stream, this.pending);
    this.pending = '';
  }
}

/** "2026-12-02T21:00:00.123456789Z text" → time + line; a line without a timestamp keeps its text. */
function entryOf(stream: LogEntry['stream'], text: string): LogEntry {
  const space = text.indexOf(' ');
  const stamp = space > 0 ? text.slice(0, space) : '';
  if (/^\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)$/.test(stamp)) return { stream, time: stamp, line: text.slice(space + 1).replace(/\r$/, '') };
  return { stream, time: '', line: text.replace(/\r$/, '') };
}
