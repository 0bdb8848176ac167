// The RouteDiscovery gRPC server: adapts each StreamRoutes call to a ProxyStream, answers
// GetProxyStatus from the registry, and turns every failure into a status through grpc-errors.ts.

import * as grpc from '@grpc/grpc-js';
import { preEncodedRouteDiscoveryService, withNonce, type DiscoveryRequest__Output, type DiscoveryResponse, type ProxyStatus, type RouteDiscoveryHandlers } from '../../../api/discovery/index.ts';
import { addressText, type Logger } from '../../../runtime/index.ts';
import { ControllerError } from '../errors.ts';
import { type ChangeTracer, NO_TRACING } from '../telemetry/change-tracer.ts';
import { SYNC_STATES, type ControllerMetrics, type SyncState } from '../telemetry/metrics.ts';
import { toServiceError } from './grpc-errors.ts';
import type { Authenticator, DiscoveryCall } from './identity.ts';
import type { ProxyRegistry } from './proxy-registry.ts';
import { ProxyStream } from './proxy-stream.ts';
import { ResponseCache } from './response-cache.ts';
import { DEFAULT_PACING, SendPacer, type SendPacerOptions } from './send-pacer.ts';
import type { SnapshotStore } from './snapshot-store.ts';

export interface DiscoveryServerOptions {
  store: SnapshotStore;
  registry: ProxyRegistry;
  authenticate: Authenticator;
  /** A response unanswered this long closes the stream with RESOURCE_EXHAUSTED. */
  ackTimeoutMs: number;
  /** Named in GetProxyStatus: which replica answered. */
  controllerId: string;
  metrics: ControllerMetrics;
  logger: Logger;
  /** Push spans, linked to the change whose table they carry. */
  tracer?: ChangeTracer;
  /** How fast responses are handed to streams (send-pacer.ts); the default suits thousands of proxies. */
  pacing?: SendPacerOptions;
}

export class DiscoveryServer {
  readonly #options: DiscoveryServerOptions;
  readonly #server: grpc.Server;
  readonly #streams = new Set<ProxyStream>();
  readonly #responses = new ResponseCache();
  readonly #pacer: SendPacer;
  #nextStreamId = 0;

  constructor(options: DiscoveryServerOptions) {
    this.#options = options;
    this.#pacer = new SendPacer(options.pacing ?? DEFAULT_PACING);
    this.#server = new grpc.Server({
      // Pings find half-open connections (a proxy node that vanished), which would otherwise hold
      // a stream, and a status entry, until the next response's ACK deadline.
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
    });
    const handlers: RouteDiscoveryHandlers = {
      StreamRoutes: (call) => this.#stream(call),
      GetProxyStatus: (_call, callback) => {
        try {
          callback(null, { proxies: this.proxyStatuses(), controllerId: this.#options.controllerId });
        } catch (err) {
          this.#options.logger.log('error', 'GetProxyStatus failed', { error: String(err) });
          callback(toServiceError(err));
        }
      },
    };
    // StreamRoutes writes pre-encoded Buffers (ResponseCache's shared bytes plus the stream's nonce).
    this.#server.addService(preEncodedRouteDiscoveryService(), handlers);
  }

  /**
   * Binds; resolves with the bound address (port 0 picks a free port). Plaintext unless `credentials`
   * say otherwise (ServingCertificate.serverCredentials() for TLS).
   */
  listen(host: string, port: number, credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure()): Promise<{ host: string; port: number }> {
    const address = addressText({ host, port });
    return new Promise((resolve, reject) => {
      this.#server.bindAsync(address, credentials, (err, boundPort) => {
        if (err !== null) reject(err);
        else resolve({ host, port: boundPort });
      });
    });
  }

  /** Responses serialised since start: one per (table) or (base, table), not one per stream. */
  get encodedResponses(): number {
    return this.#responses.encodings;
  }

  /**
   * Every connected proxy, sorted by namespace then node id, with its sync state: what GetProxyStatus
   * (and so `fhirmesh status`), /debug/status and the connected-proxies gauge all show.
   */
  proxyStatuses(): (ProxyStatus & { syncState: SyncState })[] {
    const translation = this.#options.store.current;
    return this.#options.registry
      .list()
      .map((record): ProxyStatus & { syncState: SyncState } => {
        const targetVersion = translation?.snapshotFor(record.namespace).version ?? '';
        const syncState: SyncState = record.syncState(targetVersion);
        return {
          identity: {
            nodeId: record.identity.nodeId,
            namespace: record.namespace,
            labels: { ...record.identity.labels },
            proxyVersion: record.identity.proxyVersion,
          },
          ackedVersion: record.ackedVersion,
          targetVersion,
          nackedVersion: record.nack?.version ?? '',
          nackMessage: record.nack?.message ?? '',
          syncState,
          connectedAtUnixMs: record.connectedAt.getTime(),
        };
      })
      .sort((a, b) => compare(a.identity?.namespace ?? '', b.identity?.namespace ?? '') || compare(a.identity?.nodeId ?? '', b.identity?.nodeId ?? ''));
  }

  /** How many connected proxies are in each sync state, counted over proxyStatuses(). */
  syncStateCounts(): Record<SyncState, number> {
    const counts = Object.fromEntries(SYNC_STATES.map((state) => [state, 0])) as Record<SyncState, number>;
    for (const { syncState } of this.proxyStatuses()) counts[syncState]++;
    return counts;
  }

  /** Closes every stream with UNAVAILABLE (proxies reconnect elsewhere and keep their tables), then the listener. */
  async shutdown(graceMs = 5_000): Promise<void> {
    for (const stream of [...this.#streams]) {
      stream.fail(new ControllerError('FHIRMESH_SHUTTING_DOWN', 'the controller is shutting down: reconnect (to another replica); keep serving the table in force'));
    }
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, graceMs);
      this.#server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }

  #stream(call: DiscoveryCall): void {
    const streamId = ++this.#nextStreamId;
    let ended = false;
    let gone = false;
    // The pacer's in-transit budget for a write not yet flushed: released when the stream goes too,
    // since grpc-js never calls back a write that failed.
    let releaseWrite: (() => void) | undefined;
    const stream = new ProxyStream({
      streamId,
      store: this.#options.store,
      responses: this.#responses,
      registry: this.#options.registry,
      authenticate: async (claim) => this.#options.authenticate(call, claim),
      ackTimeoutMs: this.#options.ackTimeoutMs,
      metrics: this.#options.metrics,
      logger: this.#options.logger,
      tracer: this.#options.tracer ?? NO_TRACING,
      transport: {
        send: (response, nonce, handedOver) => {
          // One response in flight per stream bounds each stream's buffer; the pacer bounds their sum.
          // Resolved when the pacer gets to it (the response may have been replaced by a newer table
          // meanwhile), and once: the bytes counted in are the bytes written.
          let resolved: Buffer | undefined;
          const bytes = (): Buffer => (resolved ??= response().bytes);
          this.#pacer.enqueue({
            get bytes() {
              return bytes().length;
            },
            get cancelled() {
              return ended || gone;
            },
            write: (flushed) => {
              releaseWrite = flushed;
              // Called back once http2 took the bytes (flow control permitting): the budget counts
              // what this process still buffers for its streams.
              // A Buffer: preEncodedRouteDiscoveryService's serializer passes it through unchanged.
              call.write(withNonce(bytes(), nonce) as unknown as DiscoveryResponse, () => {
                releaseWrite = undefined;
                flushed();
              });
              handedOver();
            },
          });
        },
        fail: (error) => {
          if (ended) return;
          ended = true;
          releaseWrite?.();
          this.#streams.delete(stream);
          // grpc-js ends a server stream with a status when the call emits 'error'.
          call.emit('error', toServiceError(error));
        },
      },
    });
    this.#streams.add(stream);
    const finish = (): void => {
      gone = true;
      releaseWrite?.();
      this.#streams.delete(stream);
      stream.ended();
    };
    call.on('data', (request: DiscoveryRequest__Output) => stream.receive(request));
    call.on('end', () => {
      // The proxy half-closed: nothing more will come, so finish our side with OK.
      finish();
      if (!ended) {
        ended = true;
        call.end();
      }
    });
    call.on('cancelled', finish);
    call.on('error', finish);
    call.on('close', finish);
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
