// Property: a path the proxy forwards stays under the backend's base path for any destination that
// percent-decodes it any number of times (bytewise, or leniently reading overlong UTF-8), treats
// `\` as `/`, drops `;params` or cuts at NUL, and then removes dot segments (RFC 3986 5.2.4), in
// either order. Inputs are what an attacker writes: dot segments and separators, each character
// encoded to a random depth, on routes that do and do not allow encoded separators.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isProxyError } from '../../../proxy/src/errors.ts';
import { parseRequestTarget } from '../../../proxy/src/metadata/request-target.ts';
import { resolveDestination } from '../../../proxy/src/metadata/routing-metadata.ts';
import { RouteTable } from '../../../proxy/src/table/route-table.ts';
import { compiledRoute } from '../../support/compiled-route.ts';

const LIMITS = { maxUrlBytes: 8192 };

/** RFC 3986 5.2.4, as written there (input buffer / output buffer). */
export function removeDotSegments(path: string): string {
  let input = path;
  let output = '';
  while (input !== '') {
    if (input.startsWith('../')) input = input.slice(3);
    else if (input.startsWith('./')) input = input.slice(2);
    else if (input.startsWith('/./')) input = input.slice(2);
    else if (input === '/.') input = '/';
    else if (input.startsWith('/../')) {
      input = input.slice(3);
      output = output.slice(0, Math.max(0, output.lastIndexOf('/')));
    } else if (input === '/..') {
      input = '/';
      output = output.slice(0, Math.max(0, output.lastIndexOf('/')));
    } else if (input === '.' || input === '..') input = '';
    else {
      const next = input.indexOf('/', input.startsWith('/') ? 1 : 0);
      const end = next < 0 ? input.length : next;
      output += input.slice(0, end);
      input = input.slice(end);
    }
  }
  return output;
}

/** One round of %XX decoding, byte by byte (latin1), as a C or Java servlet container would. */
function decodeOnce(text: string): string {
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** What old lenient UTF-8 decoders made of overlong forms: `.`, `/` and `\` in two or three bytes. */
function readOverlong(text: string): string {
  return text
    .replace(/\xc0\xae|\xe0\x80\xae/g, '.')
    .replace(/\xc0\xaf|\xe0\x80\xaf/g, '/')
    .replace(/\xc1\x9c|\xe0\x81\x9c/g, '\\');
}

type Reading = (path: string) => string;
/** How a destination may read the decoded path before removing dot segments. */
const READINGS: Record<string, Reading> = {
  'as is': (p) => p,
  'backslash as slash': (p) => p.replaceAll('\\', '/'),
  'overlong UTF-8, backslash as slash': (p) => readOverlong(p).replaceAll('\\', '/'),
  'path parameters dropped (Tomcat)': (p) =>
    p
      .replaceAll('\\', '/')
      .split('/')
      .map((s) => s.split(';')[0])
      .join('/'),
  'cut at NUL (C strings)': (p) =>
    p
      .replaceAll('\\', '/')
      .split('/')
      .map((s) => s.split('\0')[0])
      .join('/'),
};

function under(base: string, path: string): boolean {
  return path === base || path.startsWith(`${base}/`);
}

/** Every way the destination could end up reading the forwarded path; the first that escapes, if any. */
function escapeOf(base: string, forwarded: string): string | undefined {
  for (const [name, read] of Object.entries(READINGS)) {
    // Decode k times, then normalise once.
    let decoded = forwarded;
    for (let k = 0; k < 64; k++) {
      const normalised = removeDotSegments(read(decoded));
      if (!under(base, normalised)) return `${name}, decoded ${k}×, normalised once: ${JSON.stringify(normalised)}`;
      const next = decodeOnce(decoded);
      if (next === decoded) break;
      decoded = next;
    }
    // Normalise between every decoding (a router in front of the application, then the application).
    let stepped = forwarded;
    for (let k = 0; k < 64; k++) {
      stepped = removeDotSegments(read(stepped));
      if (!under(base, stepped)) return `${name}, normalised after each of ${k} decodings: ${JSON.stringify(stepped)}`;
      const next = decodeOnce(stepped);
      if (next === stepped) break;
      stepped = next;
    }
  }
  return undefined;
}

const hex = (c: string, upper: boolean): string => {
  const h = c.charCodeAt(0).toString(16).padStart(2, '0');
  return `%${upper ? h.toUpperCase() : h}`;
};
/** `c` percent-encoded `depth` times (`.` → `%2e` → `%252e` → ...). */
function encode(c: string, depth: number, upper: boolean): string {
  if (depth === 0) return c;
  let text = hex(c, upper);
  for (let d = 1; d < depth; d++) text = text.replace('%', '%25');
  return text;
}

/** What the attacker means the destination to read, character by character. */
const intent = fc.constantFrom('..', '.', '../..', '..\\..', '..;x', '.\0', '..\0', 'a/../..', 'x\\..', '/..', 'Patient', 'a.b', '...', '\xc0\xae\xc0\xae', '\xe0\x80\xae.');
/** One segment (or several, when the intent holds separators), each character encoded to its own depth. */
const segmentArb = fc
  .tuple(intent, fc.array(fc.nat({ max: 9 }), { minLength: 12, maxLength: 12 }), fc.boolean())
  .map(([text, depths, upper]) =>
    [...text].map((c, i) => {
      const depth = depths[i % depths.length] as number;
      // Raw non-ASCII and controls cannot be sent at all; they must be encoded at least once.
      const needsEncoding = c.charCodeAt(0) < 0x21 || c.charCodeAt(0) > 0x7e;
      return encode(c, needsEncoding ? Math.max(1, depth) : depth, upper);
    }).join(''),
  );
/** Besides intents: a soup of the tokens that build encodings, to reach what no intent names. */
const soupArb = fc.array(fc.constantFrom('%', '25', '2', 'e', 'E', 'f', 'F', '5', 'c', 'C', '.', ';', '\\', 'a', '%2e', '%2f', '%5c', '%25', '%00'), { minLength: 1, maxLength: 10 }).map((t) => t.join(''));

const requestArb = fc.record({
  segments: fc.array(fc.oneof({ arbitrary: segmentArb, weight: 3 }, { arbitrary: soupArb, weight: 1 }, { arbitrary: fc.constantFrom('Patient', '1', 'Binary', '%24everything', 'a%2Fb', 'a%5Cb', '%C3%A9t%C3%A9', 'urn%3Aoid%3A1.2', '%252F'), weight: 1 }), {
    minLength: 1,
    maxLength: 4,
  }),
  base: fc.constantFrom('/fhir', '/fhir/r4', '/a/b/c'),
  allowEncodedSeparators: fc.boolean(),
  pathAddressed: fc.boolean(),
});

describe('the forwarded path', () => {
  it('stays under the base path for every accepted request, however the destination decodes and normalises it', () => {
    const seen = { accepted: 0, acceptedEncoded: 0, refused: 0 };
    fc.assert(
      fc.property(requestArb, ({ segments, base, allowEncodedSeparators, pathAddressed }) => {
        const route = compiledRoute('acme', { pathSegment: true, header: true }, { allowEncodedPathSeparators: allowEncodedSeparators, backend: { baseUrl: `http://acme.internal${base}` } });
        const table = new RouteTable({ version: 't', routes: [route] });
        const url = (pathAddressed ? '/acme/' : '/') + segments.join('/');
        let path: string;
        try {
          const target = parseRequestTarget(url, ['gw.example'], '1.1', LIMITS);
          path = resolveDestination(table, { target, destinationHeader: pathAddressed ? undefined : 'acme' }).path;
        } catch (err) {
          if (!isProxyError(err)) throw err;
          seen.refused++;
          return;
        }
        seen.accepted++;
        if (path.includes('%')) seen.acceptedEncoded++;
        // As engine/engine-server.ts builds it: the base path, then the resolved path.
        const forwarded = base + path || '/';
        expect(escapeOf(base, forwarded), `forwarded ${forwarded}`).toBeUndefined();
      }),
      { numRuns: 5_000 },
    );
    // Not vacuous: plenty of accepted paths, encoded ones among them, and plenty refused.
    expect(seen.accepted).toBeGreaterThan(250);
    expect(seen.acceptedEncoded).toBeGreaterThan(100);
    expect(seen.refused).toBeGreaterThan(1_000);
  });

  it('the model itself finds the classic escapes (so the property above can fail)', () => {
    expect(escapeOf('/fhir', '/fhir/../admin')).toBeDefined();
    expect(escapeOf('/fhir', '/fhir/..%2Fadmin')).toBeDefined();
    expect(escapeOf('/fhir', '/fhir/%252e%252e/admin')).toBeDefined();
    expect(escapeOf('/fhir', '/fhir/..%5Cadmin')).toBeDefined();
    expect(escapeOf('/fhir', '/fhir/..;x/admin')).toBeDefined();
    expect(escapeOf('/fhir', '/fhir/..%00/admin')).toBeDefined();
    expect(escapeOf('/fhir', '/fhir/%c0%ae%c0%ae/admin')).toBeDefined();
    expect(escapeOf('/fhir', '/fhir/Patient/a.b/..x')).toBeUndefined();
  });
});
