// The originator-facing listener: for each request, routing metadata → table lookup → policy →
// forward, with every intermediary failure answered as an OperationOutcome naming this hop.

import { http } from '../internal/builtins.ts';
import type * as Http from 'node:http';
import { performance } from 'node:perf_hooks';
import { isProxyError, ProxyError, type ProxyErrorCode } from '../errors.ts';
import { type Forwarder, ResponseAbortedError } from '../forward/forwarder.ts';
import { viaContains } from '../forward/headers.ts';
import { classifyFhirRequest, type FhirRequestInfo } from '../metadata/fhir-request.ts';
import { resolveDestination } from '../metadata/routing-metadata.ts';
import { chooseOutcomeFormat, formatParamOf, renderOutcome } from '../outcome/operation-outcome.ts';
import { selectBackend } from '../table/route-table.ts';
import type { TableHolder } from '../table/table-holder.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { ProxyMetrics } from '../telemetry/metrics.ts';

export interface ProxyServerOptions {
  intermediaryId: string;
  holder: TableHolder;
  forwarder: Forwarder;
  logger: Logger;
  metrics: ProxyMetrics;
  accessLog: boolean;
}

const UNCLASSIFIED: FhirRequestInfo = { interaction: 'other', resourceType: undefined, operation: undefined, routeTemplate: '{other}' };

export class ProxyServer {
  readonly server: Http.Server;
  readonly #options: ProxyServerOptions;
  #inFlight = 0;
  #draining = false;
  #drained: (() => void) | undefined;

  constructor(options: ProxyServerOptions) {
    this.#options = options;
    this.server = http.createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 65_000 }, (req, res) => {
      void this.#handle(req, res);
    });
    // Clients that vanish mid-request must not take the process down.
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (socket.writable && !socket.destroyed) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
      void err;
    });
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get draining(): boolean {
    return this.#draining;
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const address = this.server.address();
        if (address === null || typeof address === 'string') reject(new Error('listener has no TCP address'));
        else resolve({ host: address.address, port: address.port });
      });
    });
  }

  /**
   * Stops accepting, lets requests in flight finish for up to `graceMs`, then cuts what is left.
   * Resolves with the number of requests that had to be cut.
   */
  async shutdown(graceMs: number): Promise<number> {
    this.#draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    if (this.#inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => {
          this.#drained = resolve;
        }),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
        }),
      ]);
      clearTimeout(timer);
    }
    const cut = this.#inFlight;
    this.server.closeAllConnections();
    await closed;
    return cut;
  }

  async #handle(req: Http.IncomingMessage, res: Http.ServerResponse): Promise<void> {
    const { holder, forwarder, metrics, intermediaryId } = this.#options;
    const started = performance.now();
    this.#inFlight++;
    metrics.requestStarted();
    const method = req.method ?? 'GET';
    // The table is read once: a reload during this request does not change its route.
    const table = holder.current;
    let destination = 'unknown';
    let request = UNCLASSIFIED;
    let status = 500;
    let origin: 'intermediary' | 'destination' = 'intermediary';
    let errorCode: ProxyErrorCode | undefined;
    let aborted = false;
    try {
      if (this.#draining && !res.headersSent) res.setHeader('Connection', 'close');
      if (!holder.loaded) throw new ProxyError('FHIRMESH_NOT_READY', 'this intermediary has no route table yet; retry shortly');
      if (viaContains(headerValue(req.headers.via), intermediaryId)) {
        throw new ProxyError('FHIRMESH_LOOP_DETECTED', `the request has already passed through '${intermediaryId}' (Via); check the routes for a cycle`);
      }
      const resolved = resolveDestination(table, req.url ?? '/', req.headers.host, headerValue(req.headers['x-destination']));
      const route = resolved.route;
      destination = route.destinationId;
      request = classifyFhirRequest(method, resolved.segments);
      if (!(route.allowedMethods as readonly string[]).includes(method)) {
        res.setHeader('Allow', route.allowedMethods.join(', '));
        throw new ProxyError('FHIRMESH_METHOD_NOT_ALLOWED', `${method} is not allowed for destination ${destination}; allowed: ${route.allowedMethods.join(', ')}`);
      }
      const declaredLength = Number(req.headers['content-length']);
      if (declaredLength > route.maxRequestBodyBytes) {
        throw new ProxyError('FHIRMESH_BODY_TOO_LARGE', `the request body (${declaredLength} bytes) is larger than destination ${destination} allows (${route.maxRequestBodyBytes} bytes)`);
      }
      const { backend } = selectBackend(route, method, request);
      const result = await forwarder.forward({
        req,
        res,
        route,
        backend,
        path: resolved.path,
        query: resolved.query,
        protocol: 'encrypted' in req.socket ? 'https' : 'http',
      });
      status = result.status;
      origin = 'destination';
    } catch (err) {
      if (err instanceof ResponseAbortedError) {
        status = err.status;
        origin = 'destination';
        aborted = true;
        metrics.responseAborted(destination);
      } else {
        const proxyError = isProxyError(err) ? err : new ProxyError('FHIRMESH_INTERNAL', 'the intermediary failed while handling the request', { cause: err });
        if (!isProxyError(err)) this.#options.logger.log('error', 'internal error', { error: String(err), destination });
        errorCode = proxyError.code;
        status = this.#answer(req, res, proxyError);
      }
    } finally {
      this.#inFlight--;
      const seconds = (performance.now() - started) / 1000;
      metrics.requestFinished({ destination, method, interaction: request.interaction, resourceType: request.resourceType, status, origin }, seconds);
      if (this.#options.accessLog) {
        this.#options.logger.log('info', 'access', {
          destination,
          method,
          interaction: request.interaction,
          route: `${method} ${request.routeTemplate}`,
          status,
          origin,
          durationMs: Math.round(seconds * 1e4) / 10,
          ...(errorCode !== undefined ? { errorCode } : {}),
          ...(aborted ? { aborted: true } : {}),
        });
      }
      if (this.#draining && this.#inFlight === 0) this.#drained?.();
    }
  }

  /** Writes the OperationOutcome for an intermediary error; returns the status sent. */
  #answer(req: Http.IncomingMessage, res: Http.ServerResponse, error: ProxyError): number {
    const rawUrl = req.url ?? '';
    const queryAt = rawUrl.indexOf('?');
    const format = chooseOutcomeFormat(formatParamOf(queryAt < 0 ? '' : rawUrl.slice(queryAt + 1)), req.headers.accept);
    const outcome = renderOutcome(error.code, error.message, this.#options.intermediaryId, format);
    if (res.headersSent) {
      res.destroy();
      return outcome.status;
    }
    // A body we did not read must not be mistaken for the next request on this connection.
    if (!req.complete) res.setHeader('Connection', 'close');
    res.setHeader('Content-Type', outcome.contentType);
    res.setHeader('Content-Length', outcome.body.length);
    res.setHeader('Fhirmesh-Intermediary', this.#options.intermediaryId);
    res.setHeader('Fhirmesh-Error', error.code);
    res.writeHead(outcome.status);
    res.end(outcome.body);
    return outcome.status;
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}
