// Keep-alive connections to backends, one pool per backend origin and TLS setting, shared by every
// route naming it: LIFO reuse, a bound per backend, idle sockets closed before the server's own
// keep-alive timeout, and an idle socket that speaks out of turn destroyed instead of reused.

import net from 'node:net';
import type * as Tls from 'node:tls';
import type { CompiledBackend, CompiledRoute } from '../../../api/index.ts';
import type { PoolUsage } from '../telemetry/metrics.ts';
import { Http1Parser, type MessageHead, type MessageSink, type ParseFailure } from './http1-parser.ts';

export interface BackendTarget {
  key: string;
  /** The backend's base URL, parsed once (telemetry logs its origin). */
  url: URL;
  host: string;
  port: number;
  isTls: boolean;
  /** Backend base path without trailing slash, `` for the root. */
  basePath: string;
  /** `host[:port]` as sent in Host. */
  hostHeader: string;
  servername: string | undefined;
  /** Built once per backend: a bad PEM fails the table, not a request. */
  secureContext: Tls.SecureContext | undefined;
}

// node:tls (OpenSSL's context, about 8 MiB of RSS) is loaded only once a backend speaks TLS.
let tlsModule: typeof Tls | undefined;
function tls(): typeof Tls {
  tlsModule ??= process.getBuiltinModule('node:tls');
  return tlsModule;
}

const MAX_SOCKETS_PER_BACKEND = 512;
const MAX_IDLE_PER_BACKEND = 64;
/** Close idle upstream sockets before a typical server's own keep-alive timeout (Node: 5 s). */
const IDLE_SOCKET_TIMEOUT_MS = 4_000;
/** Upstream response heads are bounded like Node's client (16 KiB). */
const MAX_RESPONSE_HEAD_BYTES = 16 * 1024;

/** What an exchange using a connection hears from it. */
export interface ConnectionUser {
  onConnected(): void;
  /** Returns true to skip the body (the answer to HEAD). 1xx heads arrive here too. */
  onResponseHead(head: MessageHead): boolean;
  onResponseBody(chunk: Buffer): void;
  /** The whole response has arrived; the connection is no longer the exchange's. */
  onResponseComplete(): void;
  /** The connection failed or closed before the response was complete. */
  onConnectionError(err: NodeJS.ErrnoException | undefined, parseFailure: string | undefined): void;
  onDrain(): void;
  /** A read of the response has been parsed: what it produced may leave now, in one write. */
  onReadEnd(): void;
}

export class UpstreamConnection {
  readonly socket: net.Socket;
  readonly target: BackendTarget;
  readonly #pool: BackendPool;
  readonly #parser: Http1Parser;
  #user: ConnectionUser | undefined;
  /** True once it has carried an exchange: a reset on reuse is the pool's race, not the backend's. */
  reused = false;
  connected = false;
  #closed = false;
  #idleTimer: NodeJS.Timeout | undefined;
  // One exchange's progress: the connection is reusable only if the request was wholly written
  // before the response ended, the response allows keep-alive, and nothing followed it.
  #expecting = false;
  #requestWritten = false;
  #responseComplete = false;
  #keepAlive = false;
  #stray = false;
  /** A final (>= 200) head has arrived: interim 1xx answers complete too, and do not end it. */
  #finalSeen = false;

  constructor(pool: BackendPool, target: BackendTarget) {
    this.#pool = pool;
    this.target = target;
    const socket = target.isTls
      ? tls().connect({
          host: target.host,
          port: target.port,
          ...(target.servername !== undefined ? { servername: target.servername } : net.isIP(target.host) === 0 ? { servername: target.host } : {}),
          ...(target.secureContext !== undefined ? { secureContext: target.secureContext } : {}),
          ALPNProtocols: ['http/1.1'],
        })
      : net.connect({ host: target.host, port: target.port });
    socket.setNoDelay(true);
    this.socket = socket;
    const parser: MessageSink = {
      onBegin: () => {
        // A message that starts while no answer is due: a desynchronised or hostile next hop.
        if (!this.#expecting) this.#stray = true;
      },
      onHead: (head) => {
        if (this.#stray || this.#user === undefined) return true;
        if (head.statusCode >= 200) {
          this.#finalSeen = true;
          this.#keepAlive = head.shouldKeepAlive;
        }
        return this.#user.onResponseHead(head);
      },
      onBody: (chunk) => {
        if (!this.#stray) this.#user?.onResponseBody(chunk);
      },
      onComplete: () => {
        if (this.#stray) return;
        if (this.#user === undefined || !this.#finalSeen) return;
        this.#responseComplete = true;
        this.#expecting = false;
        const user = this.#user;
        this.#user = undefined;
        user.onResponseComplete();
      },
    };
    this.#parser = new Http1Parser('response', MAX_RESPONSE_HEAD_BYTES, parser);
    socket.once(target.isTls ? 'secureConnect' : 'connect', () => {
      this.connected = true;
      // Read natively from here on (no 'data' event or Buffer per read), where the socket allows.
      this.#consumed = this.#parser.consume(socket as net.Socket & { _handle?: { isStreamBase?: boolean } | null }, (result) => this.#afterRead(result));
      if (!this.#consumed) socket.on('data', (chunk: Buffer) => this.#afterRead(this.#parser.execute(chunk)));
      this.#user?.onConnected();
    });
    socket.on('drain', () => this.#user?.onDrain());
    socket.on('error', (err: NodeJS.ErrnoException) => this.#fail(err, undefined));
    socket.on('end', () => {
      // A close-delimited body ends here (finish completes it); anything else mid-message fails.
      const failure = this.#parser.finish();
      if (failure !== undefined) this.#fail(undefined, failure.code);
      else this.#fail(undefined, undefined);
    });
    socket.on('close', () => this.#fail(undefined, undefined));
  }

  get closed(): boolean {
    return this.#closed;
  }

  #consumed = false;
  #paused = false;
  /** The exchange this connection is reading for, kept through its last read (the user is let go at completion). */
  #reader: ConnectionUser | undefined;

  /** After each read: a failure, a stray answer (bytes while idle, or after the response), or the end of an exchange. */
  #afterRead(result: number | ParseFailure): void {
    // A failure first: what the read produced is still held, and can be answered with a 502.
    if (typeof result !== 'number') {
      this.#fail(undefined, result.code);
      return;
    }
    this.#reader?.onReadEnd();
    // A message that began while no answer was due: nobody asked for it, and the next request
    // on this connection would read it as its own.
    if (this.#stray) {
      this.destroy();
      return;
    }
    if (this.#responseComplete) this.#settle();
  }

  /** Backpressure from the originator: stop reading the response until it drains. */
  pauseReading(): void {
    if (this.#paused) return;
    this.#paused = true;
    if (this.#consumed) (this.socket as net.Socket & { _handle?: { readStop(): number } | null })._handle?.readStop();
    else this.socket.pause();
  }

  resumeReading(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (this.#consumed) (this.socket as net.Socket & { _handle?: { readStart(): number } | null })._handle?.readStart();
    else this.socket.resume();
  }

  /** Binds the connection to one exchange until its response completes or the connection fails. */
  attach(user: ConnectionUser): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#user = user;
    this.#reader = user;
    this.#expecting = true;
    this.#requestWritten = false;
    this.#responseComplete = false;
    this.#finalSeen = false;
    this.#keepAlive = false;
    if (this.connected) user.onConnected();
  }

  /** The whole request (head and body) has been handed to the socket. */
  requestWritten(): void {
    if (!this.#responseComplete) this.#requestWritten = true;
  }

  /** The exchange gives the connection up before its response completed (timeout, originator gone). */
  abandon(): void {
    this.#user = undefined;
    this.destroy();
  }

  #settle(): void {
    this.#reader = undefined;
    this.resumeReading();
    const reusable = this.#requestWritten && this.#keepAlive && !this.#stray && !this.#closed && !this.socket.destroyed;
    this.#responseComplete = false;
    if (!reusable) {
      this.destroy();
      return;
    }
    this.reused = true;
    this.#pool.idle(this);
  }

  startIdleTimer(): void {
    this.#idleTimer = setTimeout(() => this.destroy(), IDLE_SOCKET_TIMEOUT_MS);
    this.#idleTimer.unref();
  }

  destroy(): void {
    this.#user = undefined;
    this.#fail(undefined, undefined);
  }

  #fail(err: NodeJS.ErrnoException | undefined, parseFailure: string | undefined): void {
    const user = this.#user;
    this.#user = undefined;
    this.#reader = undefined;
    if (!this.#closed) {
      this.#closed = true;
      this.#expecting = false;
      if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
      if (!this.socket.destroyed) this.socket.destroy();
      this.#parser.close();
      this.#pool.forget(this);
    }
    user?.onConnectionError(err, parseFailure);
  }
}

/** The connections of one backend. */
class BackendPool {
  readonly target: BackendTarget;
  readonly #idle: UpstreamConnection[] = [];
  readonly #waiters: ((connection: UpstreamConnection) => void)[] = [];
  #open = 0;
  retired = false;

  constructor(target: BackendTarget) {
    this.target = target;
  }

  get inUse(): number {
    return this.#open - this.#idle.length;
  }

  get idleCount(): number {
    return this.#idle.length;
  }

  /** Calls back with a connection now (idle or new) or once one is free. */
  acquire(onConnection: (connection: UpstreamConnection) => void): void {
    for (;;) {
      const idle = this.#idle.pop();
      if (idle === undefined) break;
      if (!idle.closed) {
        onConnection(idle);
        return;
      }
    }
    if (this.#open < MAX_SOCKETS_PER_BACKEND) {
      this.#open++;
      onConnection(new UpstreamConnection(this, this.target));
      return;
    }
    this.#waiters.push(onConnection);
  }

  cancel(onConnection: (connection: UpstreamConnection) => void): void {
    const at = this.#waiters.indexOf(onConnection);
    if (at >= 0) this.#waiters.splice(at, 1);
  }

  idle(connection: UpstreamConnection): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      waiter(connection);
      return;
    }
    if (this.retired || this.#idle.length >= MAX_IDLE_PER_BACKEND) {
      connection.destroy();
      return;
    }
    connection.startIdleTimer();
    this.#idle.push(connection);
  }

  forget(connection: UpstreamConnection): void {
    this.#open--;
    const at = this.#idle.indexOf(connection);
    if (at >= 0) this.#idle.splice(at, 1);
    // A slot opened: the longest waiter gets a new connection.
    const waiter = this.#waiters.shift();
    if (waiter !== undefined && !this.retired) {
      this.#open++;
      waiter(new UpstreamConnection(this, this.target));
    }
  }

  destroyIdle(): void {
    for (const connection of this.#idle.splice(0)) connection.destroy();
  }
}

export class UpstreamPools {
  readonly #pools = new Map<string, BackendPool>();
  readonly #targets = new WeakMap<CompiledBackend, BackendTarget>();
  /** Equal backends (the common case: many routes, one upstream) share one target and TLS context. */
  #byIdentity = new Map<string, BackendTarget>();

  /** Resolved once per compiled backend object, so the request path parses no URL. */
  target(backend: CompiledBackend): BackendTarget {
    let target = this.#targets.get(backend);
    if (target === undefined) {
      const tlsSpec = backend.tls;
      const identity = tlsSpec === undefined ? backend.baseUrl : `${backend.baseUrl}\n${tlsSpec.serverName ?? ''}\n${tlsSpec.caPem ?? ''}\n${tlsSpec.certPem ?? ''}\n${tlsSpec.keyPem ?? ''}`;
      target = this.#byIdentity.get(identity);
      if (target === undefined) {
        target = backendTarget(backend);
        this.#byIdentity.set(identity, target);
      }
      this.#targets.set(backend, target);
    }
    return target;
  }

  pool(target: BackendTarget): BackendPool {
    let pool = this.#pools.get(target.key);
    if (pool === undefined || pool.retired) {
      pool = new BackendPool(target);
      this.#pools.set(target.key, pool);
    }
    return pool;
  }

  /**
   * Resolves every backend of a table before it is installed (URL, TLS context built from its PEMs),
   * throwing with the route and backend named, so a bad PEM refuses the table instead of failing
   * requests later.
   */
  prepare(routes: readonly CompiledRoute[]): void {
    for (const route of routes) {
      for (const backend of [route.backend, ...route.rules.map((rule) => rule.backend)]) {
        try {
          this.target(backend);
        } catch (err) {
          throw new Error(`route ${route.destinationId}: backend ${backend.baseUrl} cannot be used: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        }
      }
    }
  }

  /** A new table is in force: pools of backends it no longer names close as they fall idle. */
  retainOnly(backends: Iterable<CompiledBackend>): void {
    const keep = new Set<string>();
    const identities = new Map<string, BackendTarget>();
    for (const backend of backends) {
      const target = this.target(backend);
      keep.add(target.key);
      identities.set(target.key, target);
    }
    // Targets of backends no table names any more are let go (the WeakMap follows the routes).
    this.#byIdentity = new Map([...this.#byIdentity].filter(([, target]) => identities.has(target.key)));
    for (const [key, pool] of this.#pools) {
      if (keep.has(key)) continue;
      this.#pools.delete(key);
      pool.retired = true;
      pool.destroyIdle();
    }
  }

  /** Connections carrying an exchange and idle, per backend origin, for the pool-use metric. */
  usage(): PoolUsage[] {
    const byOrigin = new Map<string, PoolUsage>();
    for (const pool of this.#pools.values()) {
      const origin = pool.target.url.origin;
      const usage = byOrigin.get(origin) ?? { backend: origin, active: 0, idle: 0 };
      usage.active += pool.inUse;
      usage.idle += pool.idleCount;
      byOrigin.set(origin, usage);
    }
    return [...byOrigin.values()];
  }

  destroy(): void {
    for (const pool of this.#pools.values()) {
      pool.retired = true;
      pool.destroyIdle();
    }
    this.#pools.clear();
  }
}

/**
 * Parses the backend URL and builds its TLS context. Throws for a backend this proxy cannot use
 * (bad URL, unreadable PEM), which the table install turns into a refusal.
 */
export function backendTarget(backend: CompiledBackend): BackendTarget {
  const url = new URL(backend.baseUrl);
  const isTls = url.protocol === 'https:';
  const tlsSpec = backend.tls;
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? (isTls ? 443 : 80) : Number(url.port);
  const basePath = url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : url.pathname;
  let secureContext: Tls.SecureContext | undefined;
  if (isTls && (tlsSpec?.caPem !== undefined || tlsSpec?.certPem !== undefined || tlsSpec?.keyPem !== undefined)) {
    secureContext = tls().createSecureContext({
      ...(tlsSpec.caPem !== undefined ? { ca: tlsSpec.caPem } : {}),
      ...(tlsSpec.certPem !== undefined ? { cert: tlsSpec.certPem } : {}),
      ...(tlsSpec.keyPem !== undefined ? { key: tlsSpec.keyPem } : {}),
    });
  }
  return {
    key: JSON.stringify([url.origin, tlsSpec?.serverName, tlsSpec?.caPem, tlsSpec?.certPem, tlsSpec?.keyPem]),
    url,
    host,
    port,
    isTls,
    basePath,
    hostHeader: url.host,
    servername: tlsSpec?.serverName,
    secureContext,
  };
}
