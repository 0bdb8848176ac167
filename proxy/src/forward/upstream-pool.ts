// Keep-alive connection pools to backends, one per backend origin and TLS setting, shared by every
// route that uses it; pools a new table no longer names are closed once their last request ends.

import { http, https } from '../internal/builtins.ts';
import type * as Http from 'node:http';
import type { Duplex } from 'node:stream';
import type { CompiledBackend } from '../../../api/index.ts';
import type { PoolUsage } from '../telemetry/metrics.ts';

export interface ParsedBackend {
  key: string;
  url: URL;
  isTls: boolean;
  /** Backend base path without trailing slash, `` for the root. */
  basePath: string;
  /** `host[:port]` as sent in Host. */
  hostHeader: string;
}

interface PoolEntry {
  agent: Http.Agent;
  /** `scheme://host:port`, the backend label of the upstream-sockets gauge. */
  origin: string;
  inFlight: number;
  retired: boolean;
}

const MAX_SOCKETS_PER_BACKEND = 512;
const MAX_FREE_SOCKETS_PER_BACKEND = 64;
/** Close idle upstream sockets before a typical server's own keep-alive timeout (Node: 5 s). */
const FREE_SOCKET_TIMEOUT_MS = 4_000;

export class UpstreamPool {
  readonly #entries = new Map<string, PoolEntry>();
  readonly #parsed = new WeakMap<CompiledBackend, ParsedBackend>();

  /** Parsing is cached per compiled backend object, so the request path parses no URL. */
  parse(backend: CompiledBackend): ParsedBackend {
    let parsed = this.#parsed.get(backend);
    if (parsed === undefined) {
      const url = new URL(backend.baseUrl);
      const tls = backend.tls;
      const key = JSON.stringify([url.origin, tls?.serverName, tls?.caPem, tls?.certPem, tls?.keyPem]);
      const basePath = url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : url.pathname;
      parsed = { key, url, isTls: url.protocol === 'https:', basePath, hostHeader: url.host };
      this.#parsed.set(backend, parsed);
    }
    return parsed;
  }

  /** Borrow the pool for one request; call the returned release once the exchange is over. */
  acquire(backend: CompiledBackend, parsed: ParsedBackend): { agent: Http.Agent; release: () => void } {
    let entry = this.#entries.get(parsed.key);
    if (entry === undefined) {
      entry = { agent: createAgent(backend, parsed), origin: parsed.url.origin, inFlight: 0, retired: false };
      this.#entries.set(parsed.key, entry);
    }
    const held = entry;
    held.inFlight++;
    let released = false;
    return {
      agent: held.agent,
      release: () => {
        if (released) return;
        released = true;
        held.inFlight--;
        if (held.retired && held.inFlight === 0) held.agent.destroy();
      },
    };
  }

  /** Called when a new table is in force: pools for backends it no longer uses go away. */
  retainOnly(backends: Iterable<CompiledBackend>): void {
    const keep = new Set<string>();
    for (const backend of backends) keep.add(this.parse(backend).key);
    for (const [key, entry] of this.#entries) {
      if (keep.has(key)) continue;
      this.#entries.delete(key);
      entry.retired = true;
      if (entry.inFlight === 0) entry.agent.destroy();
    }
  }

  /** Sockets per backend origin, active and idle, for the upstream-sockets gauge (read at scrape time). */
  usage(): PoolUsage[] {
    const byOrigin = new Map<string, PoolUsage>();
    for (const entry of this.#entries.values()) {
      const origin = entry.origin;
      const usage = byOrigin.get(origin) ?? { backend: origin, active: 0, idle: 0 };
      usage.active += countSockets(entry.agent.sockets);
      usage.idle += countSockets(entry.agent.freeSockets);
      byOrigin.set(origin, usage);
    }
    return [...byOrigin.values()];
  }

  destroy(): void {
    for (const entry of this.#entries.values()) entry.agent.destroy();
    this.#entries.clear();
  }
}

/**
 * An idle pooled socket must stay silent: a byte arriving between exchanges is a response nobody
 * asked for (a destination desynchronised, or a second answer sent late), and the next request
 * on that socket would read it as its own. Such a socket is destroyed instead of reused.
 */
function guardIdleSockets<T extends Http.Agent>(agent: T): T {
  const keep = agent.keepSocketAlive.bind(agent) as (socket: Duplex) => boolean;
  const reuse = agent.reuseSocket.bind(agent);
  Object.assign(agent, {
    keepSocketAlive(socket: Duplex): boolean {
      if (socket.readableLength > 0) return false;
      socket.on('data', destroyOnIdleData);
      // Paused, the bytes would wait in the buffer for the next request's parser.
      socket.resume();
      return keep(socket);
    },
    reuseSocket(socket: Duplex, request: Http.ClientRequest): void {
      socket.off('data', destroyOnIdleData);
      reuse(socket, request);
    },
  });
  return agent;
}

function destroyOnIdleData(this: Duplex): void {
  this.destroy();
}

function createAgent(backend: CompiledBackend, parsed: ParsedBackend): Http.Agent {
  return guardIdleSockets(createPlainAgent(backend, parsed));
}

function createPlainAgent(backend: CompiledBackend, parsed: ParsedBackend): Http.Agent {
  const common = {
    keepAlive: true,
    maxSockets: MAX_SOCKETS_PER_BACKEND,
    maxFreeSockets: MAX_FREE_SOCKETS_PER_BACKEND,
    scheduling: 'lifo' as const,
    timeout: FREE_SOCKET_TIMEOUT_MS,
  };
  if (!parsed.isTls) return new http.Agent(common);
  const tls = backend.tls;
  return new https.Agent({
    ...common,
    ...(tls?.caPem !== undefined ? { ca: tls.caPem } : {}),
    ...(tls?.certPem !== undefined ? { cert: tls.certPem } : {}),
    ...(tls?.keyPem !== undefined ? { key: tls.keyPem } : {}),
    ...(tls?.serverName !== undefined ? { servername: tls.serverName } : {}),
  });
}

function countSockets(byName: NodeJS.ReadOnlyDict<readonly unknown[]>): number {
  let count = 0;
  for (const list of Object.values(byName)) count += list?.length ?? 0;
  return count;
}
