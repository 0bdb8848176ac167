// The controller's HTTP client for the Kubernetes API: authentication from client-node's KubeConfig,
// one pooled connection per apiserver, a deadline on every request, JSON in and out, typed failures.

import { HttpMethod, RequestContext, type KubeConfig } from '@kubernetes/client-node';
import { fetch, type Dispatcher } from 'undici';
import type { KubeObject } from './objects.ts';

export interface KubeRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path with no query, e.g. /api/v1/namespaces/payers/services. */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** Default application/json; PATCH needs e.g. application/merge-patch+json. */
  contentType?: string;
  /** Default: the client's. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface KubeResponse {
  status: number;
  /** Parsed JSON when the answer is JSON, else the text. */
  body: unknown;
}

/**
 * A request that did not succeed: `status` is the HTTP status, or 0 when no answer came (refused,
 * reset, timed out). `reason` is the Status reason (NotFound, Conflict, Forbidden, Expired...).
 */
export class KubeApiError extends Error {
  readonly status: number;
  readonly reason: string;
  /** Same name as client-node's watch errors carry, so one classifier reads both. */
  readonly statusCode: number;

  constructor(method: string, path: string, status: number, reason: string, message: string, options?: { cause?: unknown }) {
    super(`${method} ${path}: ${status === 0 ? 'no answer' : `${status} ${reason}`}${message === '' ? '' : `: ${message}`}`, options);
    this.name = 'KubeApiError';
    this.status = status;
    this.statusCode = status;
    this.reason = reason;
  }

  /** Worth trying again later: no answer, conflict, throttled, or a server-side failure. */
  get retryable(): boolean {
    return this.status === 0 || this.status === 409 || this.status === 429 || this.status >= 500;
  }
}

/** The HTTP status an error carries, from this client, client-node's watch, or a Status object; 0 if none. */
export function statusOf(err: unknown): number {
  const e = err as { status?: unknown; statusCode?: unknown; code?: unknown } | null;
  for (const value of [e?.statusCode, e?.status, e?.code]) if (typeof value === 'number') return value;
  return 0;
}

export interface KubeList<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

export class KubeClient {
  readonly #config: KubeConfig;
  readonly #defaultTimeoutMs: number;
  // client-node 2.0.1 builds a new undici Agent in every applySecurityAuthentication() call, so each
  // request through its generated APIs opens a new TLS connection. The first one is kept and reused.
  #dispatcher: Dispatcher | undefined;
  /** Aborts every request still in flight when the client closes (a PATCH must not hold up shutdown). */
  readonly #closing = new AbortController();
  #closed = false;

  constructor(config: KubeConfig, options: { defaultTimeoutMs?: number } = {}) {
    this.#config = config;
    this.#defaultTimeoutMs = options.defaultTimeoutMs ?? 30_000;
  }

  /** The apiserver URL, for logs. */
  get server(): string {
    return this.#config.getCurrentCluster()?.server ?? '(no cluster)';
  }

  /** Any HTTP status; throws KubeApiError(status 0) only when no answer came. */
  async request(request: KubeRequest): Promise<KubeResponse> {
    if (this.#closed) throw new KubeApiError(request.method, request.path, 0, 'Closed', 'the client is closed (controller stopping)');
    const cluster = this.#config.getCurrentCluster();
    if (cluster === null) throw new KubeApiError(request.method, request.path, 0, 'NoCluster', 'the kubeconfig names no current cluster');
    const url = new URL(cluster.server.replace(/\/+$/, '') + request.path);
    for (const [name, value] of Object.entries(request.query ?? {})) if (value !== undefined) url.searchParams.set(name, String(value));

    // Headers come fresh each time: in a pod the token file rotates under us.
    const context = new RequestContext(url.toString(), HttpMethod[request.method]);
    await this.#config.applySecurityAuthentication(context);
    this.#dispatcher ??= context.getDispatcher();
    // One controller per request, tied to the deadline, to close() and to the caller's signal by
    // listeners removed when the request ends: AbortSignal.any over the client's long-lived signal
    // would keep every request's signal reachable from it (nodejs/node#54614).
    const timeoutMs = request.timeoutMs ?? this.#defaultTimeoutMs;
    const abort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort(new DOMException(`timed out after ${timeoutMs} ms`, 'TimeoutError'));
    }, timeoutMs);
    const onAbort = (): void => abort.abort(new Error('aborted'));
    this.#closing.signal.addEventListener('abort', onAbort, { once: true });
    request.signal?.addEventListener('abort', onAbort, { once: true });
    const headers: Record<string, string> = { ...context.getHeaders(), accept: 'application/json' };
    if (request.body !== undefined) headers['content-type'] = request.contentType ?? 'application/json';
    try {
      const response = await fetch(url, {
        method: request.method,
        headers,
        ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
        ...(this.#dispatcher === undefined ? {} : { dispatcher: this.#dispatcher }),
        signal: abort.signal,
      });
      const text = await response.text();
      const isJson = (response.headers.get('content-type') ?? '').includes('json');
      let body: unknown = text;
      if (isJson && text !== '') {
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
      }
      return { status: response.status, body };
    } catch (err) {
      throw new KubeApiError(request.method, request.path, 0, timedOut ? 'Timeout' : 'NoAnswer', timedOut ? `timed out after ${timeoutMs} ms` : causeText(err), { cause: err });
    } finally {
      clearTimeout(timer);
      this.#closing.signal.removeEventListener('abort', onAbort);
      request.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** The parsed body of a 2xx answer; KubeApiError with the Status message otherwise. */
  async json<T>(request: KubeRequest): Promise<T> {
    const response = await this.request(request);
    if (response.status < 200 || response.status > 299) throw errorOf(request, response);
    return response.body as T;
  }

  /**
   * Every item of a collection, in pages of `pageSize` (one consistent snapshot: the continue
   * token pins the first page's resourceVersion), with that resourceVersion for the watch.
   */
  async list<T extends KubeObject>(path: string, options: { labelSelector?: string; fieldSelector?: string; pageSize?: number; timeoutMs?: number } = {}): Promise<KubeList<T>> {
    const items: T[] = [];
    let resourceVersion: string | undefined;
    let next: string | undefined;
    do {
      const page = await this.json<KubeList<T>>({
        method: 'GET',
        path,
        query: { labelSelector: options.labelSelector, fieldSelector: options.fieldSelector, limit: options.pageSize ?? 500, continue: next },
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      });
      items.push(...(page.items ?? []));
      resourceVersion ??= page.metadata?.resourceVersion;
      next = page.metadata?.continue || undefined;
    } while (next !== undefined);
    return { metadata: { ...(resourceVersion === undefined ? {} : { resourceVersion }) }, items };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#closing.abort(new Error('the Kubernetes client is closed (controller stopping)'));
    const dispatcher = this.#dispatcher;
    this.#dispatcher = undefined;
    // destroy, not close: a request still waiting (a PATCH during shutdown) must not hold the exit.
    await dispatcher?.destroy().catch(() => undefined);
  }
}

export function errorOf(request: Pick<KubeRequest, 'method' | 'path'>, response: KubeResponse): KubeApiError {
  const status = response.body as { reason?: unknown; message?: unknown } | null;
  const reason = typeof status?.reason === 'string' && status.reason !== '' ? status.reason : httpReason(response.status);
  const message = typeof status?.message === 'string' ? status.message : typeof response.body === 'string' ? response.body.slice(0, 300) : '';
  return new KubeApiError(request.method, request.path, response.status, reason, message);
}

function httpReason(status: number): string {
  return { 400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 409: 'Conflict', 410: 'Gone', 422: 'Invalid', 429: 'TooManyRequests' }[status] ?? (status >= 500 ? 'ServerError' : `HTTP${status}`);
}

function causeText(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  const code = (cause as { code?: unknown } | undefined)?.code;
  const text = err instanceof Error ? err.message : String(err);
  return cause instanceof Error ? `${text} (${typeof code === 'string' ? `${code}: ` : ''}${cause.message})` : text;
}
