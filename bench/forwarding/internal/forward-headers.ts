// The header rules every engine in this benchmark applies, so that they are compared doing
// the same job a reverse proxy does: drop hop-by-hop headers, point Host upstream, append Via.
import type { IncomingHttpHeaders } from 'node:http';

export const VIA_TOKEN = '1.1 fhirmesh';

// RFC 9110 §7.6.1 plus the legacy ones proxies still see (Keep-Alive, Proxy-Connection).
const HOP_BY_HOP = new Set([
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

type RawHeader = string | Buffer;

function headerText(value: RawHeader): string {
  return typeof value === 'string' ? value : value.toString('latin1');
}

// Names listed in Connection are hop-by-hop for this message only (RFC 9110 §7.6.1).
function addConnectionOptions(into: Set<string>, connectionValue: string): void {
  for (const option of connectionValue.split(',')) {
    const name = option.trim().toLowerCase();
    if (name !== '') into.add(name);
  }
}

function connectionOptionsOfRaw(rawHeaders: readonly RawHeader[]): Set<string> | undefined {
  let options: Set<string> | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = headerText(rawHeaders[i] as RawHeader);
    if (name.length === 10 && name.toLowerCase() === 'connection') {
      options ??= new Set();
      addConnectionOptions(options, headerText(rawHeaders[i + 1] as RawHeader));
    }
  }
  return options;
}

function copyEndToEnd(rawHeaders: readonly RawHeader[], into: string[], dropHost: boolean): void {
  const connectionOptions = connectionOptionsOfRaw(rawHeaders);
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = headerText(rawHeaders[i] as RawHeader);
    const lowerName = name.toLowerCase();
    if (HOP_BY_HOP.has(lowerName) || connectionOptions?.has(lowerName) === true) continue;
    if (dropHost && lowerName === 'host') continue;
    into.push(name, headerText(rawHeaders[i + 1] as RawHeader));
  }
}

/**
 * Request headers for the upstream, as a flat [name, value, ...] list that keeps the
 * originator's order, case and repeated fields. Host names the upstream; Via gains a line.
 */
export function upstreamRequestHeaders(rawHeaders: readonly string[], upstreamAuthority: string): string[] {
  const headers = ['host', upstreamAuthority];
  copyEndToEnd(rawHeaders, headers, true);
  headers.push('via', VIA_TOKEN);
  return headers;
}

/** Response headers for the originator, as a flat list; accepts undici's Buffer form too. */
export function downstreamResponseHeaders(rawHeaders: readonly RawHeader[]): string[] {
  const headers: string[] = [];
  copyEndToEnd(rawHeaders, headers, false);
  return headers;
}

/** Whether a request carries a body (RFC 9112 §6.3): only a length or a transfer coding says so. */
export function requestHasBody(rawHeaders: readonly string[]): boolean {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const lowerName = (rawHeaders[i] as string).toLowerCase();
    if (lowerName === 'transfer-encoding') return true;
    if (lowerName === 'content-length') return rawHeaders[i + 1] !== '0';
  }
  return false;
}

/** The same rules on Node's parsed header object, in place: the form http-proxy copies from. */
export function stripHopByHop(headers: IncomingHttpHeaders): void {
  const connection = headers.connection;
  if (connection !== undefined) {
    const options = new Set<string>();
    addConnectionOptions(options, connection);
    for (const name of options) delete headers[name];
  }
  // Deleting only what is present keeps V8 from turning every header object into a dictionary.
  for (const name of HOP_BY_HOP) if (headers[name] !== undefined) delete headers[name];
}

/** Appends this hop to Via on Node's parsed header object (repeated Via lines arrive joined). */
export function appendVia(headers: IncomingHttpHeaders): void {
  const via = headers.via;
  headers.via = via === undefined ? VIA_TOKEN : `${via}, ${VIA_TOKEN}`;
}
