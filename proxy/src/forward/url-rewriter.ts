// Opt-in (`rewriteResponseUrls`) replacement of the backend's base URL by the public one, in
// Location headers and streamed JSON bodies; outside the final IG, so never on by default.

import { Transform, type TransformCallback } from 'node:stream';

/**
 * Replaces every whole-URL occurrence of `from` by `to` in a byte stream, holding back at most |from|
 * bytes: an occurrence counts only when the byte after it cannot continue the base's last segment
 * or host (so `.../r4` is not rewritten inside `.../r4b/...`), as rewriteUrlPrefix does for headers.
 */
export class UrlPrefixRewriter {
  readonly #from: Buffer;
  readonly #to: Buffer;
  #carry: Buffer = Buffer.alloc(0);

  constructor(from: string, to: string) {
    this.#from = Buffer.from(from);
    this.#to = Buffer.from(to);
  }

  /** The bytes decided so far; a tail that may still be (part of) a match is held back. */
  write(chunk: Buffer): Buffer[] {
    return this.#scan(this.#carry.length === 0 ? chunk : Buffer.concat([this.#carry, chunk]), false);
  }

  /** At the end of the body a match needs no following byte to be whole. */
  flush(): Buffer[] {
    return this.#carry.length > 0 ? this.#scan(this.#carry, true) : [];
  }

  #scan(data: Buffer, final: boolean): Buffer[] {
    const parts: Buffer[] = [];
    let start = 0;
    let searchFrom = 0;
    let undecidedAt = -1;
    for (;;) {
      const at = data.indexOf(this.#from, searchFrom);
      if (at < 0) break;
      const after = at + this.#from.length;
      if (after === data.length && !final) {
        // The boundary byte has not arrived yet: decide with the next chunk.
        undecidedAt = at;
        break;
      }
      searchFrom = at + 1;
      if (after < data.length && continuesUrl(data[after] as number)) continue;
      parts.push(data.subarray(start, at), this.#to);
      start = after;
      searchFrom = after;
    }
    // Keep a tail that could be the beginning of a match split across chunks.
    const keep = final ? 0 : undecidedAt >= 0 ? data.length - undecidedAt : Math.min(this.#from.length - 1, data.length - start);
    const emitEnd = data.length - keep;
    if (emitEnd > start) parts.push(data.subarray(start, emitEnd));
    this.#carry = Buffer.from(data.subarray(emitEnd));
    return parts.filter((part) => part.length > 0);
  }
}

/** UrlPrefixRewriter as a Transform, for bodies that are piped. */
export class StreamingReplace extends Transform {
  readonly #rewriter: UrlPrefixRewriter;

  constructor(from: string, to: string) {
    super();
    this.#rewriter = new UrlPrefixRewriter(from, to);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    for (const part of this.#rewriter.write(chunk)) this.push(part);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    for (const part of this.#rewriter.flush()) this.push(part);
    callback();
  }
}

/** Bytes that would make the text before them a longer host, port or path segment (RFC 3986 pchar). */
function continuesUrl(byte: number): boolean {
  const c = String.fromCharCode(byte);
  return /[A-Za-z0-9\-._~%!$&'()*+,;=:@]/.test(c);
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
