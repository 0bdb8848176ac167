// The one place that reads a request's target and authority: origin- or absolute-form, one Host
// without userinfo, and the path rules that keep every forwarded path under the backend's base.

import { ProxyError } from '../errors.ts';

export interface RequestTarget {
  /** The authority as the originator sent it (absolute-form target wins over Host); for Forwarded. */
  authority: string | undefined;
  /** The authority's host, lower-cased, port and trailing dot removed: the key for host routing. */
  host: string | undefined;
  /** Path segments after the leading `/`, raw as sent (`/a/b/` is `['a', 'b', '']`; `/` is `[]`). */
  segments: string[];
  /** Index of each segment that decodes to `/` or `\` (`%2F`, `%5C`, `%252F`...). */
  encodedSeparatorAt: ReadonlySet<number>;
  /** Raw query without `?`; `` when none. */
  query: string;
}

export interface TargetLimits {
  maxUrlBytes: number;
}

const NO_SEPARATORS: ReadonlySet<number> = new Set();
/** Visible ASCII only: RFC 3986 has no place for spaces, controls or raw non-ASCII bytes. */
const TARGET_CHARS = /^[\x21-\x7e]*$/;
const PERCENT_TRIPLET = /%(?![0-9A-Fa-f]{2})/;
/** RFC 3986 reg-name (unreserved / sub-delims; no pct-encoding in a host we route on) or IP-literal. */
const AUTHORITY = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=-]*)(?::([0-9]*))?$/;
/** How many times a destination could plausibly decode a segment (`%25252e` → `%252e` → `%2e` → `.`). */
const DECODE_ROUNDS = 4;

/**
 * Parses the target and the Host header values (every occurrence, raw). Throws ProxyError
 * (400/414) for what cannot be forwarded as it was sent.
 */
export function parseRequestTarget(
  rawTarget: string,
  hostValues: readonly string[],
  httpVersion: string,
  limits: TargetLimits,
): RequestTarget {
  if (rawTarget.length > limits.maxUrlBytes) {
    throw new ProxyError('FHIRMESH_URI_TOO_LONG', `the request URL is longer than this intermediary accepts (${limits.maxUrlBytes} bytes)`);
  }
  if (!TARGET_CHARS.test(rawTarget)) {
    throw new ProxyError('FHIRMESH_REQUEST_MALFORMED', 'the request URL contains spaces, control characters or raw non-ASCII bytes; percent-encode them');
  }
  if (hostValues.length > 1) {
    throw new ProxyError('FHIRMESH_REQUEST_MALFORMED', 'the request has more than one Host header (RFC 9112 3.2); send exactly one');
  }
  const hostHeader = hostValues[0];
  let authority: string | undefined;
  let pathAndQuery: string;
  if (rawTarget.startsWith('/')) {
    if (hostHeader === undefined && httpVersion === '1.1') {
      throw new ProxyError('FHIRMESH_REQUEST_MALFORMED', 'an HTTP/1.1 request must carry a Host header (RFC 9112 3.2)');
    }
    authority = hostHeader;
    pathAndQuery = rawTarget;
  } else {
    // absolute-form (RFC 9112 3.2.2): the target's authority replaces Host.
    const m = /^https?:\/\/([^/?#]*)(.*)$/i.exec(rawTarget);
    if (m === null) {
      throw new ProxyError('FHIRMESH_REQUEST_MALFORMED', 'the request target is neither a path nor an absolute http(s) URL (asterisk- and authority-form are not FHIR interactions)');
    }
    authority = m[1] ?? '';
    const rest = m[2] ?? '';
    pathAndQuery = rest === '' ? '/' : rest;
    if (!pathAndQuery.startsWith('/') && !pathAndQuery.startsWith('?')) {
      throw new ProxyError('FHIRMESH_REQUEST_MALFORMED', 'the absolute URL has no path');
    }
    if (pathAndQuery.startsWith('?')) pathAndQuery = '/' + pathAndQuery;
  }
  const host = authority === undefined ? undefined : parseAuthority(authority);
  if (pathAndQuery.includes('#')) {
    throw new ProxyError('FHIRMESH_REQUEST_MALFORMED', 'the request URL carries a fragment (#); fragments are never sent to a server');
  }
  const queryAt = pathAndQuery.indexOf('?');
  const rawPath = queryAt < 0 ? pathAndQuery : pathAndQuery.slice(0, queryAt);
  const query = queryAt < 0 ? '' : pathAndQuery.slice(queryAt + 1);
  const segments = rawPath === '/' ? [] : rawPath.slice(1).split('/');
  let encodedSeparatorAt: Set<number> | undefined;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] as string;
    if (segment === '') {
      // `/a/` is a FHIR base or type with a trailing slash; `//` inside would reach a destination
      // that reads a leading `//x` as an authority.
      if (i === segments.length - 1) continue;
      throw new ProxyError('FHIRMESH_PATH_UNSAFE', 'the request path has an empty segment (`//`); check the client\'s base URL for a doubled slash');
    }
    if (checkSegment(segment)) (encodedSeparatorAt ??= new Set()).add(i);
  }
  return { authority, host, segments, encodedSeparatorAt: encodedSeparatorAt ?? NO_SEPARATORS, query };
}

/**
 * Refuses what no base path survives: dot segments (after any number of decodings, and
 * `..;param`), backslashes, NUL and other controls. Returns true when the segment decodes to a
 * path separator, which only a route that opts in may forward.
 */
function checkSegment(segment: string): boolean {
  if (segment.includes('\\')) {
    throw new ProxyError('FHIRMESH_PATH_UNSAFE', 'the request path contains a backslash, which some servers read as `/`; percent-encode it or remove it');
  }
  if (PERCENT_TRIPLET.test(segment)) {
    throw new ProxyError('FHIRMESH_REQUEST_MALFORMED', 'the request path has a `%` that does not start a percent-encoded byte (`%XX`)');
  }
  let separator = false;
  let current = segment;
  for (let round = 0; ; round++) {
    // Whatever a destination splits the decoded segment on, no piece may be a dot segment.
    for (const piece of round === 0 ? [current] : current.split(SEPARATORS)) {
      const semicolon = piece.indexOf(';');
      const beforeParams = semicolon < 0 ? piece : piece.slice(0, semicolon);
      if (beforeParams === '.' || beforeParams === '..') {
        throw new ProxyError('FHIRMESH_PATH_UNSAFE', 'the request path contains a dot segment (`.` or `..`, possibly percent-encoded); send a normalised FHIR URL');
      }
    }
    if (round > 0) {
      if (SEPARATORS.test(current)) separator = true;
      if (CONTROL.test(current)) {
        throw new ProxyError('FHIRMESH_PATH_UNSAFE', 'the request path decodes to a control character (such as %00); remove it');
      }
    }
    if (!current.includes('%')) {
      if (round > 0 && !isUtf8(current)) {
        // Overlong forms (%C0%AF for `/`) are how old decoders were tricked into separators.
        throw new ProxyError('FHIRMESH_PATH_UNSAFE', 'the request path percent-decodes to bytes that are not UTF-8; encode the path as UTF-8');
      }
      break;
    }
    const decoded = percentDecode(current);
    if (decoded === current) break;
    // Checked after DECODE_ROUNDS decodings and still encoded: a destination decoding once more
    // would read what was never checked (`%252525252e` is `.` after five).
    if (round === DECODE_ROUNDS) {
      throw new ProxyError('FHIRMESH_PATH_UNSAFE', `the request path is still percent-encoded after ${DECODE_ROUNDS} decodings; send it encoded once`);
    }
    current = decoded;
  }
  return separator;
}

const SEPARATORS = /[/\\]/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** `text` holds bytes as latin1 characters (percentDecode's output). */
function isUtf8(text: string): boolean {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(text)) return true;
  try {
    UTF8.decode(Buffer.from(text, 'latin1'));
    return true;
  } catch {
    return false;
  }
}

/** Decodes `%XX` byte by byte (latin1), so invalid UTF-8 never throws and never hides a `/`. */
function percentDecode(text: string): string {
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** Returns the routing key of an authority: host lower-cased, without port or trailing dot. */
function parseAuthority(authority: string): string | undefined {
  if (authority.includes('@')) {
    throw new ProxyError('FHIRMESH_REQUEST_MALFORMED', 'the Host (or the URL\'s authority) carries userinfo (`user@host`); send the host name only');
  }
  const m = AUTHORITY.exec(authority);
  if (m === null) {
    throw new ProxyError('FHIRMESH_REQUEST_MALFORMED', 'the Host header is not a host name or IP literal with an optional port');
  }
  const port = m[2];
  if (port !== undefined && port !== '' && Number(port) > 65535) {
    throw new ProxyError('FHIRMESH_REQUEST_MALFORMED', 'the Host header names a port above 65535');
  }
  const host = (m[1] ?? '').toLowerCase();
  if (host === '') return undefined;
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

/** Path segments percent-decoded for classification only (`%24count` is `$count` to a destination). */
export function decodeSegmentForClassification(segment: string): string {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
