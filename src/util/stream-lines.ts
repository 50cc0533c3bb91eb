import { StringDecoder } from 'node:string_decoder';

/**
 * Lines of a streamed Engine API answer (events, pull progress: JSON lines, `\n` or `\r\n`),
 * blank lines skipped. Unlike node:readline, it ends or throws when the stream is destroyed
 * (readline waits for an 'end' that a destroyed stream never emits). docker-modem's
 * `followProgress` is not used because it throws from a 'data' handler on a line that is not
 * JSON and cannot be stopped early.
 */
export async function* streamLines(stream: AsyncIterable<Buffer | string>): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  for await (const chunk of stream) {
    pending += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      const line = pending.slice(0, newline).replace(/\r$/, '');
      pending = pending.slice(newline + 1);
      if (line.trim() !== '') yield line;
      newline = pending.indexOf('\n');
    }
  }
  pending += decoder.end();
  if (pending.trim() !== '') yield pending;
}
