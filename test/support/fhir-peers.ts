// Helpers for tests that put the sample FHIR server (cli/src/demo) behind real proxies: one raw
// HTTP exchange that keeps status, raw headers and body bytes, and the header view to compare hops.

import http from 'node:http';
import { startSampleFhirServer, type SampleFhirServer } from '../../cli/src/demo/sample-fhir-server.ts';
import { routeYaml, startProxyFixture, type ProxyFixture } from './proxy-fixture.ts';

export interface Exchange {
  status: number;
  /** Node's parsed view: lower-case names. */
  headers: http.IncomingHttpHeaders;
  /** `[name, value, ...]` exactly as received. */
  rawHeaders: string[];
  body: Buffer;
  text: string;
}

export interface ExchangeOptions {
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/**
 * node:http rather than fetch(): it keeps raw header order and case, lets a test set Host, and
 * does not follow redirects or decode anything, so what is asserted is what crossed the wire.
 */
export function exchange(method: string, url: string, options: ExchangeOptions = {}): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: options.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body, text: body.toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The parsed JSON body of an exchange, typed loosely for assertions. */
export function jsonOf<T = Record<string, unknown>>(response: Exchange): T {
  return JSON.parse(response.text) as T;
}

/** Headers each HTTP hop sets for itself (framing, connection, date): not part of the passed-through response. */
const PER_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date', 'content-length']);

/**
 * The end-to-end response headers as `name: value` lines in arrival order, names lower-cased: two
 * hops that relayed a response unchanged give the same list.
 */
export function endToEndHeaders(rawHeaders: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    if (!PER_HOP.has(name)) out.push(`${name}: ${rawHeaders[i + 1] as string}`);
  }
  return out;
}

/** For building a RegExp from a URL (ports, dots, `$`). */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A form body for POST _search. */
export const FORM = 'application/x-www-form-urlencoded';
export const FHIR_JSON = 'application/fhir+json';

/** A seeded sample FHIR destination `acme` behind a proxy, addressed by header or path segment. */
export interface DestinationBehindProxy {
  sample: SampleFhirServer;
  proxy: ProxyFixture;
  /** The destination's public FHIR base: the proxy's URL plus the routing segment. */
  base: string;
  stop(): Promise<void>;
}

export async function startDestinationBehindProxy(options: { intermediaryId?: string } = {}): Promise<DestinationBehindProxy> {
  const sample = await startSampleFhirServer({ name: 'acme', seed: true });
  const proxy = await startProxyFixture(
    routeYaml(
      'acme',
      `
destination: acme
addressing: { header: true, pathSegment: true }
backend: { url: ${sample.url} }`,
    ),
    options,
  );
  const base = `${proxy.url}/acme`;
  // The IG puts the public base on the destination: it writes this into Location and fullUrl.
  sample.setPublicBaseUrl(base);
  return {
    sample,
    proxy,
    base,
    async stop() {
      await proxy.stop();
      await sample.close();
    },
  };
}
