// A minimal HTTPS client for the test kube-apiserver: its own CA, a bearer token, JSON in and out, and
// line-delimited watch streams. Enough for the harness and its tests; product code uses a real client.

import { Agent, fetch } from 'undici';

/** What a test needs to reach the apiserver; plain data, so vitest can hand it from globalSetup to workers. */
export interface KubeConnection {
  url: string;
  caPem: string;
  token: string;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; uid?: string; [key: string]: unknown };
  [key: string]: unknown;
}

export interface KubeResponse {
  status: number;
  body: unknown;
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject;
}

export class KubeHttpError extends Error {
  readonly status: number;
  readonly body: unknown;

  constructor(method: string, path: string, response: KubeResponse) {
    const reason = (response.body as { message?: unknown } | null)?.message;
    super(`${method} ${path} answered ${response.status}${typeof reason === 'string' ? `: ${reason}` : ''}`);
    this.name = 'KubeHttpError';
    this.status = response.status;
    this.body = response.body;
  }
}

export class KubeHttp {
  readonly connection: KubeConnection;
  readonly #agent: Agent;

  constructor(connection: KubeConnection) {
    this.connection = connection;
    this.#agent = new Agent({ connect: { ca: connection.caPem } });
  }

  /** Any status; the body is parsed JSON when the response is JSON, else text. */
  async request(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<KubeResponse> {
    const response = await fetch(new URL(path, this.connection.url), {
      method,
      dispatcher: this.#agent,
      signal,
      headers: {
        authorization: `Bearer ${this.connection.token}`,
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const isJson = response.headers.get('content-type')?.includes('json') ?? false;
    return { status: response.status, body: isJson && text ? JSON.parse(text) : text };
  }

  /** The parsed body of a 2xx answer; a KubeHttpError carrying the Status message otherwise. */
  async json<T = KubeObject>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.request(method, path, body);
    if (response.status < 200 || response.status > 299) throw new KubeHttpError(method, path, response);
    return response.body as T;
  }

  /**
   * The events of `GET path` with watch=1 added, as they arrive, until the server ends the stream or
   * `signal` aborts (which ends the iteration quietly). Pass resourceVersion in `path` to start from it.
   */
  async *watch(path: string, signal?: AbortSignal): AsyncGenerator<WatchEvent> {
    const url = new URL(path, this.connection.url);
    url.searchParams.set('watch', '1');
    let response;
    try {
      response = await fetch(url, {
        dispatcher: this.#agent,
        signal,
        headers: { authorization: `Bearer ${this.connection.token}`, accept: 'application/json' },
      });
    } catch (err) {
      if (signal?.aborted) return;
      throw err;
    }
    if (response.status !== 200 || !response.body) {
      const text = await response.text();
      throw new KubeHttpError('WATCH', path, { status: response.status, body: text ? safeJson(text) : text });
    }
    const decoder = new TextDecoder();
    let buffered = '';
    try {
      for await (const chunk of response.body) {
        buffered += decoder.decode(chunk, { stream: true });
        let newline;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line) yield JSON.parse(line) as WatchEvent;
        }
      }
    } catch (err) {
      if (signal?.aborted) return;
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
