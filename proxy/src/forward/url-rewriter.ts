// Opt-in (`rewriteResponseUrls`) replacement of the backend's base URL by the public one, in
// Location headers and streamed JSON bodies; outside the final IG, so never on by default.

import { Transform, type TransformCallback } from 'node:stream';

/** Replaces every occurrence of `from` by `to` in a byte stream, holding back at most |from|-1 bytes. */
export class StreamingReplace extends Transform {
  readonly #from: Buffer;
  readonly #to: Buffer;
  #carry: Buffer = Buffer.alloc(0);

  constructor(from: string, to: string) {
    super();
    this.#from = Buffer.from(from);
    this.#to = Buffer.from(to);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const data = this.#carry.length === 0 ? chunk : Buffer.concat([this.#carry, chunk]);
    const parts: Buffer[] = [];
    let start = 0;
    for (;;) {
      const at = data.indexOf(this.#from, start);
      if (at < 0) break;
      parts.push(data.subarray(start, at), this.#to);
      start = at + this.#from.length;
    }
    // Keep a tail that could be the beginning of a match split across chunks.
    const keep = Math.min(this.#from.length - 1, data.length - start);
    const emitEnd = data.length - keep;
    if (emitEnd > start) parts.push(data.subarray(start, emitEnd));
    this.#carry = Buffer.from(data.subarray(emitEnd));
    for (const part of parts) if (part.length > 0) this.push(part);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.#carry.length > 0) this.push(this.#carry);
    callback();
  }
}

/** Header values that carry URLs back to the originator. */
export const URL_HEADERS = new Set(['location', 'content-location']);

export function rewriteUrlPrefix(value: string, from: string, to: string): string {
  return value.startsWith(from) && (value.length === from.length || '/?#'.includes(value[from.length] as string))
    ? to + value.slice(from.length)
    : value;
}

/** Bodies are rewritten only when they are JSON we can read: not compressed, JSON media type. */
export function isRewritableBody(contentType: string | undefined, contentEncoding: string | undefined): boolean {
  if (contentEncoding !== undefined && contentEncoding !== '' && contentEncoding.toLowerCase() !== 'identity') return false;
  if (contentType === undefined) return false;
  return /json/i.test(contentType);
}
