// A sample destination FHIR R4 server for `npm run demo` and the proxy's integration tests: Medplum's
// FhirRouter and MemoryRepository (npm) behind node:http, answering with a real server's headers and public URLs.
//
// What the library routes natively and what internal/ adds is listed in internal/sample-routes.ts,
// internal/journaled-repository.ts and internal/bulk-export.ts. Data lives in memory and dies with close().

import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FhirRouter } from '@medplum/fhir-router';
import { BulkExportJobs } from './internal/bulk-export.ts';
import { dispatch, FHIR_BASE_PATH } from './internal/dispatch.ts';
import type { DispatcherContext } from './internal/dispatch.ts';
import { outcome } from './internal/fhir-http.ts';
import type { SampleResponse } from './internal/fhir-http.ts';
import { loadFhirDefinitions } from './internal/fhir-definitions.ts';
import { JournaledRepository } from './internal/journaled-repository.ts';
import { registerSampleRoutes } from './internal/sample-routes.ts';
import { seedSampleData } from './internal/seed-data.ts';

export { SEED_IDS as SAMPLE_SEED_IDS } from './internal/seed-data.ts';

export interface SampleFhirServerOptions {
  /** Names the server in its CapabilityStatement, its error messages and seeded `meta.source`. */
  name: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** The base URL clients use (e.g. the proxy's); defaults to the server's own `url`. */
  publicBaseUrl?: string;
  /** Load the stable sample data set (SAMPLE_SEED_IDS). */
  seed?: boolean;
}

/** One request as it arrived, for tests asserting what a proxy forwarded. */
export interface RecordedRequest {
  method: string;
  /** The request-target as received, e.g. `/fhir/Patient?name=Silva`. */
  url: string;
  /** Node's parsed view: lower-case names, some duplicates joined. */
  headers: IncomingHttpHeaders;
  /** `[name, value, name, value, ...]` exactly as received: original case, order and duplicates. */
  rawHeaders: string[];
  /** The body as UTF-8 text; empty when there was none or it exceeded the size limit. */
  body: string;
}

export interface SampleFhirServer {
  readonly name: string;
  /** `http://127.0.0.1:PORT/fhir`: the FHIR base, no trailing slash. */
  readonly url: string;
  readonly port: number;
  /** The base written into fullUrl, Location, Content-Location and Bundle.link. */
  readonly publicBaseUrl: string;
  setPublicBaseUrl(url: string): void;
  /** Requests in arrival order; only the last MAX_RECORDED_REQUESTS are kept. */
  readonly requests: RecordedRequest[];
  close(): Promise<void>;
}

export const MAX_RECORDED_REQUESTS = 1000;
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const MAX_EXPORT_JOBS = 50;

export async function startSampleFhirServer(options: SampleFhirServerOptions): Promise<SampleFhirServer> {
  const name = options.name;
  if (!name) {
    throw new Error('startSampleFhirServer: options.name is empty; give each sample server a name, e.g. "lab".');
  }
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`Sample FHIR server '${name}': port ${port} is not a TCP port; use 0-65535 (0 picks a free one).`);
  }
  let publicBaseUrl = options.publicBaseUrl === undefined ? undefined : normalizeBaseUrl(name, options.publicBaseUrl);
  // Known once listening; nothing reads it before (no request can arrive earlier).
  let url = '';
  const currentPublicBaseUrl = (): string => publicBaseUrl ?? url;

  const compartment = await loadFhirDefinitions();
  const repo = new JournaledRepository();
  if (options.seed) {
    await seedSampleData(repo, name);
  }
  const router = new FhirRouter();
  registerSampleRoutes({
    router,
    repo,
    compartment,
    serverName: name,
    publicBaseUrl: currentPublicBaseUrl,
    extraOperations: [{ name: 'export' }, { name: 'export', resourceType: 'Patient' }],
  });
  const context: DispatcherContext = {
    router,
    repo,
    bulk: new BulkExportJobs(repo, compartment, { maxJobs: MAX_EXPORT_JOBS }),
    publicBaseUrl: currentPublicBaseUrl,
  };

  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    serve(req, res).catch((err: unknown) => {
      // Reading the request failed (client went away); there is no one left to answer.
      res.destroy(err instanceof Error ? err : undefined);
    });
  });

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const recorded: RecordedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: [...req.rawHeaders],
      body: '',
    };
    requests.push(recorded);
    if (requests.length > MAX_RECORDED_REQUESTS) {
      requests.splice(0, requests.length - MAX_RECORDED_REQUESTS);
    }
    const body = await readBody(req);
    let response: SampleResponse;
    if (body === undefined) {
      response = outcome(413, 'error', 'too-costly', `Request body exceeds ${MAX_BODY_BYTES} bytes; split it (e.g. smaller Bundles).`);
    } else {
      recorded.body = body.toString('utf8');
      try {
        response = await dispatch(context, { method: recorded.method, target: recorded.url, headers: req.headers, body });
      } catch (err) {
        response = outcome(500, 'error', 'exception', `Sample FHIR server '${name}' failed: ${(err as Error).message}`);
      }
    }
    writeResponse(res, response);
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(new Error(`Sample FHIR server '${name}' could not listen on ${host}:${port} (${err.message}); pick a free port, or 0 for any.`));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const boundPort = (server.address() as AddressInfo).port;
  url = `http://${urlHost(host)}:${boundPort}${FHIR_BASE_PATH}`;

  let closing: Promise<void> | undefined;
  return {
    name,
    url,
    port: boundPort,
    get publicBaseUrl() {
      return currentPublicBaseUrl();
    },
    setPublicBaseUrl(next: string) {
      publicBaseUrl = normalizeBaseUrl(name, next);
    },
    requests,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive clients (fetch, fhir-kit-client) would otherwise hold close() open.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function normalizeBaseUrl(name: string, candidate: string): string {
  let parsed: URL;
  try {
    parsed = new URL(candidate);
  } catch {
    parsed = new URL('invalid:');
  }
  if ((parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.search || parsed.hash) {
    throw new Error(
      `Sample FHIR server '${name}': public base URL '${candidate}' must be an absolute http(s) URL without query, e.g. http://127.0.0.1:8080/fhir.`,
    );
  }
  return parsed.href.replace(/\/+$/, '');
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') {
    return '127.0.0.1';
  }
  if (host === '::') {
    return '[::1]';
  }
  return host.includes(':') ? `[${host}]` : host;
}

// Past the limit the rest is drained, not kept, so the 413 can still be written on the same socket.
async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) {
      chunks.push(chunk);
    }
  }
  return size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks);
}

function writeResponse(res: ServerResponse, response: SampleResponse): void {
  res.statusCode = response.status;
  for (const [header, value] of Object.entries(response.headers)) {
    res.setHeader(header, value);
  }
  if (response.body === undefined) {
    if (response.status !== 204 && response.status !== 304) {
      res.setHeader('Content-Length', '0');
    }
    res.end();
    return;
  }
  const bytes = Buffer.from(response.body, 'utf8');
  res.setHeader('Content-Length', String(bytes.length));
  res.end(bytes);
}
