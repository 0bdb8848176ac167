// Builds the header list sent upstream and the one passed back: hop-by-hop fields removed
// (RFC 9110 7.6.1), Forwarded (RFC 7239) and Via appended, everything else kept raw and in order.
// Body framing is per hop: the originator's framing headers never travel, the proxy's own do.

import { type BodyFraming, framingHeader } from '../server/request-framing.ts';

export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

export interface UpstreamHeaderContext {
  intermediaryId: string;
  /** `host[:port]` of the backend, sent as Host. */
  upstreamHost: string;
  /** Value for X-Destination at the next hop; the header is removed when undefined. */
  nextHopDestination: string | undefined;
  clientAddress: string | undefined;
  originalHost: string | undefined;
  protocol: 'http' | 'https';
  httpVersion: string;
  /** How the body arrived (server/request-framing.ts); it is framed the same way upstream. */
  framing: BodyFraming;
  /**
   * Leave out traceparent/tracestate: a tracing hop sends its own (W3C Trace Context: the parent-id
   * names this hop's span, and tracestate travels with it). Not tracing, they pass untouched.
   */
  dropTraceContext?: boolean;
}

/** Names listed in Connection are hop-by-hop for this message too. */
function connectionTokens(rawHeaders: readonly string[]): Set<string> | undefined {
  let tokens: Set<string> | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() === 'connection') {
      tokens ??= new Set();
      for (const t of (rawHeaders[i + 1] as string).split(',')) tokens.add(t.trim().toLowerCase());
    }
  }
  return tokens;
}

/** Flat [name, value, ...] list for the upstream request. */
export function upstreamRequestHeaders(rawHeaders: readonly string[], ctx: UpstreamHeaderContext): string[] {
  const listed = connectionTokens(rawHeaders);
  const out: string[] = [];
  let forwarded: string | undefined;
  let via: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    const value = rawHeaders[i + 1] as string;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed?.has(lower)) continue;
    switch (lower) {
      // Framing (content-length) is re-done below from what the parser actually used,
      // whatever Connection named.
      case 'host':
      case 'x-destination':
      case 'content-length':
        continue;
      case 'forwarded':
        forwarded = forwarded === undefined ? value : `${forwarded}, ${value}`;
        continue;
      case 'via':
        via = via === undefined ? value : `${via}, ${value}`;
        continue;
      case 'traceparent':
      case 'tracestate':
        if (ctx.dropTraceContext === true) continue;
    }
    out.push(name, value);
  }
  out.push('Host', ctx.upstreamHost);
  const framing = framingHeader(ctx.framing);
  if (framing !== undefined) out.push(framing[0], framing[1]);
  if (ctx.nextHopDestination !== undefined) out.push('X-Destination', ctx.nextHopDestination);
  const ours = forwardedElement(ctx);
  out.push('Forwarded', forwarded === undefined ? ours : `${forwarded}, ${ours}`);
  const viaOurs = `${ctx.httpVersion} ${ctx.intermediaryId}`;
  out.push('Via', via === undefined ? viaOurs : `${via}, ${viaOurs}`);
  return out;
}

function forwardedElement(ctx: UpstreamHeaderContext): string {
  const parts = [`by=_${ctx.intermediaryId}`];
  if (ctx.clientAddress !== undefined) parts.push(`for=${forwardedNode(ctx.clientAddress)}`);
  if (ctx.originalHost !== undefined && ctx.originalHost !== '') parts.push(`host=${quoteIfNeeded(ctx.originalHost)}`);
  parts.push(`proto=${ctx.protocol}`);
  return parts.join(';');
}

function forwardedNode(address: string): string {
  const bare = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  return bare.includes(':') ? `"[${bare}]"` : bare;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
function quoteIfNeeded(value: string): string {
  return TOKEN.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * True when our own id already appears as a received-by in Via: the request has come round.
 * Via entries look like `1.1 gw-a` or `HTTP/1.1 gw-a (comment)`.
 */
export function viaContains(viaHeader: string | undefined, intermediaryId: string): boolean {
  if (viaHeader === undefined) return false;
  for (const entry of viaHeader.split(',')) {
    const fields = entry.trim().split(/\s+/);
    if (fields[1] === intermediaryId) return true;
  }
  return false;
}

/** The response's end-to-end headers, raw and in order; framing is re-done on this hop. */
export function downstreamResponseHeaders(rawHeaders: readonly string[]): string[] {
  const listed = connectionTokens(rawHeaders);
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed?.has(lower)) continue;
    out.push(name, rawHeaders[i + 1] as string);
  }
  return out;
}
