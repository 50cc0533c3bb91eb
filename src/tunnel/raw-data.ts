import type { RawData } from 'ws';

/**
 * ws hands a message over as a Buffer, an ArrayBuffer or the Buffers of its fragments (RawData);
 * both ends of the tunnel read frames through these, without copying a message that came whole.
 */

/** Bytes in a message. */
export function rawLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.byteLength, 0);
  return data.byteLength;
}

/** The message as one Buffer (fragments joined; a whole message as it is). */
export function rawToBuffer(data: RawData): Buffer {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  return data;
}

/** The message as UTF-8 text. */
export function rawToString(data: RawData): string {
  return rawToBuffer(data).toString('utf8');
}
