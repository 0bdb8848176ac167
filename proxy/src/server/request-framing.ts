// The one place that decides how a request body is framed: read from the message's own framing
// headers (never from Connection), refused when faulty, and framed afresh for the next hop.

import { ProxyError } from '../errors.ts';

/** How the body arrived, which is also how it is framed on the next hop. */
export type BodyFraming = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' };

/**
 * Emitted on a request (with a ProxyError) when its body turns out malformed after forwarding
 * began: the forwarder cuts the upstream attempt and answers 400 for it.
 */
export const BODY_FRAMING_FAILED = 'fhirmesh:body-framing-failed';

const NO_BODY: BodyFraming = { kind: 'none' };
const DIGITS = /^[0-9]+$/;

/**
 * Reads the framing of a parsed request from its raw headers. The HTTP parser has already cut the
 * body by these same rules; this refuses what it let through that a next hop could read another
 * way (RFC 9112 6.1, 6.3): Transfer-Encoding on HTTP/1.0, a coding other than `chunked`,
 * Transfer-Encoding beside Content-Length, and several Content-Length values.
 */
export function requestFraming(httpVersion: string, rawHeaders: readonly string[]): BodyFraming {
  let transferEncoding: string | undefined;
  let contentLength: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (name.length !== 17 && name.length !== 14) continue;
    const lower = name.toLowerCase();
    const value = rawHeaders[i + 1] as string;
    if (lower === 'transfer-encoding') {
      transferEncoding = transferEncoding === undefined ? value : `${transferEncoding},${value}`;
    } else if (lower === 'content-length') {
      if (contentLength !== undefined && contentLength.trim() !== value.trim()) {
        throw new ProxyError('FHIRMESH_REQUEST_MALFORMED', 'the request has two different Content-Length values; send one');
      }
      contentLength = value;
    }
  }
  if (transferEncoding !== undefined) {
    if (httpVersion === '1.0') {
      throw new ProxyError('FHIRMESH_REQUEST_MALFORMED', 'an HTTP/1.0 request cannot use Transfer-Encoding (RFC 9112 6.1); send Content-Length or use HTTP/1.1');
    }
    if (contentLength !== undefined) {
      throw new ProxyError('FHIRMESH_REQUEST_MALFORMED', 'the request has both Transfer-Encoding and Content-Length; send one');
    }
    const codings = transferEncoding.split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '');
    if (codings.length !== 1 || codings[0] !== 'chunked') {
      throw new ProxyError('FHIRMESH_NOT_IMPLEMENTED', 'this intermediary forwards only `Transfer-Encoding: chunked` request bodies; send the body chunked or with Content-Length');
    }
    return { kind: 'chunked' };
  }
  if (contentLength !== undefined) {
    const trimmed = contentLength.trim();
    if (!DIGITS.test(trimmed) || trimmed.length > 15) {
      throw new ProxyError('FHIRMESH_REQUEST_MALFORMED', 'the request\'s Content-Length is not a decimal byte count');
    }
    return { kind: 'length', length: Number(trimmed) };
  }
  return NO_BODY;
}

/** True when something follows the head on the wire. */
export function hasBody(framing: BodyFraming): boolean {
  return framing.kind === 'chunked' || (framing.kind === 'length' && framing.length > 0);
}

/** The framing header for the next hop; the originator's own are never passed on as they came. */
export function framingHeader(framing: BodyFraming): [string, string] | undefined {
  switch (framing.kind) {
    case 'none':
      return undefined;
    case 'length':
      return ['Content-Length', String(framing.length)];
    case 'chunked':
      return ['Transfer-Encoding', 'chunked'];
  }
}
