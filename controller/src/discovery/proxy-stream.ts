// One proxy's StreamRoutes, as discovery.proto's stream rules say: first answer at once (full or
// `current`), then deltas on the ACKed table, one response in flight, NACKs recorded, ACK deadline.

import { nackReasonLabel, type DiscoveryRequest__Output } from '../../../api/discovery/index.ts';
import type { Logger } from '../../../runtime/index.ts';
import type { ScopedTable } from '../compile/index.ts';
import { ControllerError } from '../errors.ts';
import type { ChangeRef, ChangeTracer, OpenSpan } from '../telemetry/change-tracer.ts';
import type { ControllerMetrics, ResponseKind } from '../telemetry/metrics.ts';
import { identityClaimOf, servedNamespace, type AuthenticatedProxy, type ProxyIdentityClaim } from './identity.ts';
import { ProxyRecord, type ProxyRegistry } from './proxy-registry.ts';
import type { ResponseCache, SharedResponse } from './response-cache.ts';
import type { SnapshotStore } from './snapshot-store.ts';

/** The stream's gRPC side, which the server provides: proxy-stream.ts knows no gRPC. */
export interface StreamTransport {
  /**
   * Queues a response (its shared bytes, then this stream's nonce) and calls `handedOver` once its
   * bytes are written to the stream; the server paces the writes (send-pacer.ts), so that may be
   * many event-loop turns later, never synchronously. `response` is read when the bytes are written:
   * a response that waited its turn carries the table in force by then.
   */
  send(response: () => SharedResponse, nonce: string, handedOver: () => void): void;
  /** Ends the stream with the status this error maps to. */
  fail(error: unknown): void;
}

export interface ProxyStreamOptions {
  streamId: number;
  transport: StreamTransport;
  store: SnapshotStore;
  /** Shared by every stream of a server: a table is encoded once, not once per stream. */
  responses: ResponseCache;
  registry: ProxyRegistry;
  authenticate: (claim: ProxyIdentityClaim) => Promise<AuthenticatedProxy>;
  ackTimeoutMs: number;
  metrics: ControllerMetrics;
  logger: Logger;
  tracer: ChangeTracer;
}

/** What a response is, whatever table it ends up carrying: the first answer, a full snapshot, a delta on the ACKed table. */
type Plan = 'first' | 'full' | 'delta';

interface InFlight {
  nonce: string;
  plan: Plan;
  kind: ResponseKind;
  table: ScopedTable;
  response: SharedResponse;
  /** Both undefined until the bytes are handed to the stream: queued, not yet sent. */
  sentAtMs: number | undefined;
  deadline: NodeJS.Timeout | undefined;
  /** From sent to ACK or NACK, linked to the change whose table it carries. */
  span: OpenSpan;
}

/** Bounded by design: at most one response is in flight, so a stream holds one table however fast routes change. */
export class ProxyStream {
  readonly #options: ProxyStreamOptions;
  #phase: 'hello' | 'opening' | 'serving' | 'closed' = 'hello';
  #record: ProxyRecord | undefined;
  #heldVersion = '';
  #answered = false;
  #inFlight: InFlight | undefined;
  #needsFullSnapshot = false;
  #unsubscribe: (() => void) | undefined;
  #nonces = 0;

  constructor(options: ProxyStreamOptions) {
    this.#options = options;
  }

  /** A DiscoveryRequest from the proxy. Never throws: failures end the stream with a status. */
  receive(request: DiscoveryRequest__Output): void {
    switch (this.#phase) {
      case 'hello':
        this.#phase = 'opening';
        this.#open(request).catch((err: unknown) => this.#fail(err));
        return;
      case 'opening':
        // Nothing has been sent yet, so there is nothing this could answer.
        this.#options.logger.log('debug', 'discovery request before the first response ignored', { streamId: this.#options.streamId });
        return;
      case 'serving':
        this.#answer(request);
        return;
      case 'closed':
        return;
    }
  }

  /** Ends the stream with this error's status (shutdown). Idempotent. */
  fail(error: ControllerError): void {
    this.#fail(error);
  }

  /** The proxy went away (half-close, cancel, transport error): forget it. Idempotent. */
  ended(): void {
    if (this.#phase === 'closed') return;
    this.#close();
  }

  async #open(first: DiscoveryRequest__Output): Promise<void> {
    const claim = identityClaimOf(first);
    const namespace = servedNamespace(claim, await this.#options.authenticate(claim));
    if (namespace !== claim.namespace) {
      // It gets its own namespace all the same. Worth a warning: a proxy misconfigured (--namespace,
      // POD_NAMESPACE) or one trying to read another namespace's routes.
      this.#options.logger.log('warn', 'proxy claims another namespace than its token proves; it is served its own', {
        nodeId: claim.nodeId,
        claimed: claim.namespace,
        served: namespace,
        streamId: this.#options.streamId,
      });
    }
    // Rule 1: an answer from a source not yet read would wipe the proxy's table.
    await this.#options.store.ready;
    if (this.#phase === 'closed') return;
    const record = new ProxyRecord({
      streamId: this.#options.streamId,
      identity: claim,
      namespace,
      connectedAt: new Date(),
      disconnect: (error) => this.#fail(error),
    });
    this.#record = record;
    this.#heldVersion = first.versionInfo;
    this.#phase = 'serving';
    this.#options.registry.add(record, (older) => {
      this.#options.logger.log('warn', 'a newer stream from the same proxy replaces the older one', {
        nodeId: claim.nodeId,
        namespace,
        olderStream: older.streamId,
        newerStream: record.streamId,
      });
      older.disconnect(
        new ControllerError('FHIRMESH_STREAM_SUPERSEDED', `a newer stream from ${claim.nodeId} (${namespace}) replaced this one; node ids must be unique per proxy`),
      );
    });
    this.#unsubscribe = this.#options.store.subscribe(() => this.#pump());
    this.#options.logger.log('info', 'proxy connected', {
      nodeId: claim.nodeId,
      namespace,
      proxyVersion: claim.proxyVersion,
      heldVersion: first.versionInfo,
      streamId: record.streamId,
    });
    this.#pump();
  }

  /** Sends the next response if one is due and none is in flight (rule 4). */
  #pump(): void {
    const record = this.#record;
    const translation = this.#options.store.current;
    if (this.#phase !== 'serving' || this.#inFlight !== undefined || record === undefined || translation === undefined) return;
    const target = translation.snapshotFor(record.namespace);
    const cause = this.#options.store.changeOf(translation);
    if (!this.#answered) {
      // Rule 2: answer at once (paced, in order), with nothing to apply when the proxy already runs the target.
      this.#answered = true;
      this.#send('first', target, cause);
      return;
    }
    if (!this.#due(record, target)) return;
    this.#send(this.#needsFullSnapshot || record.acked === undefined ? 'full' : 'delta', target, cause);
  }

  /** Rule 3: never an unchanged table. Rule 5: never the same refused version again. */
  #due(record: ProxyRecord, target: ScopedTable): boolean {
    return target.version !== record.acked?.version && target.version !== record.nack?.version;
  }

  #responseFor(plan: Plan, target: ScopedTable): SharedResponse {
    const responses = this.#options.responses;
    const acked = this.#record?.acked;
    if (plan === 'first') return this.#heldVersion !== '' && this.#heldVersion === target.version ? responses.current(target) : responses.full(target);
    return plan === 'delta' && acked !== undefined ? responses.delta(acked, target) : responses.full(target);
  }

  /**
   * The response in flight as it is written: while it waited its turn, a newer table may have come
   * into force, and it then goes out instead (rule 4: coalesced into the response, not after it).
   */
  #latest(inFlight: InFlight): SharedResponse {
    const record = this.#record;
    const translation = this.#options.store.current;
    if (inFlight.sentAtMs !== undefined || this.#phase === 'closed' || record === undefined || translation === undefined) return inFlight.response;
    const target = translation.snapshotFor(record.namespace);
    // A table that is no longer due (the change was undone, or it is the refused one) keeps the
    // response planned: that one was due when it was queued.
    if (target === inFlight.table || (inFlight.plan !== 'first' && !this.#due(record, target))) return inFlight.response;
    inFlight.table = target;
    inFlight.response = this.#responseFor(inFlight.plan, target);
    inFlight.kind = inFlight.response.kind;
    return inFlight.response;
  }

  /** Puts a response in flight (rule 4 holds from here, while it waits to be written). */
  #send(plan: Plan, table: ScopedTable, cause: ChangeRef | undefined): void {
    const nonce = String(++this.#nonces);
    const response = this.#responseFor(plan, table);
    const { kind } = response;
    // From queued to ACK or NACK: the span shows the wait for the pacer too.
    const span = this.#options.tracer.push(cause, {
      nodeId: this.#record?.identity.nodeId ?? '',
      namespace: this.#record?.namespace ?? '',
      kind,
      version: table.version,
      upserted: response.upserted,
      removed: response.removed,
    });
    const inFlight: InFlight = { nonce, plan, kind, table, response, sentAtMs: undefined, deadline: undefined, span };
    this.#inFlight = inFlight;
    if (kind === 'full') this.#needsFullSnapshot = false;
    this.#options.transport.send(
      () => this.#latest(inFlight),
      nonce,
      () => this.#handedOver(inFlight),
    );
  }

  #handedOver(inFlight: InFlight): void {
    if (this.#inFlight !== inFlight || this.#phase === 'closed') return;
    // Rule 6: the deadline runs from when the bytes were handed to the stream, not from when the
    // response was queued: a stream waiting its turn in a reconnect wave is not a slow consumer.
    inFlight.sentAtMs = performance.now();
    inFlight.deadline = setTimeout(() => {
      // Timers run before the event loop polls sockets: after a long busy stretch an expiring
      // deadline would win over an ACK already received. One setImmediate lets the poll read it
      // first; #tooSlow does nothing if this response is no longer in flight by then.
      setImmediate(() => this.#tooSlow(inFlight));
    }, this.#options.ackTimeoutMs);
    this.#options.metrics.responseSent(inFlight.kind);
    this.#options.logger.log('debug', 'discovery response sent', {
      nodeId: this.#record?.identity.nodeId,
      kind: inFlight.kind,
      version: inFlight.table.version,
      baseVersion: inFlight.response.baseVersion,
      upserted: inFlight.response.upserted,
      removed: inFlight.response.removed,
      nonce: inFlight.nonce,
    });
  }

  /** An ACK or NACK (rule 5). */
  #answer(request: DiscoveryRequest__Output): void {
    const inFlight = this.#inFlight;
    const record = this.#record;
    // A response not yet written cannot have been answered, whatever nonce the request guessed.
    const sentAtMs = inFlight?.sentAtMs;
    if (inFlight === undefined || sentAtMs === undefined || record === undefined || request.responseNonce !== inFlight.nonce) {
      // As in xDS: an answer to a response that is not the one in flight is stale; it changes nothing.
      this.#options.logger.log('debug', 'discovery answer with a stale or unknown nonce ignored', {
        nodeId: record?.identity.nodeId,
        nonce: request.responseNonce,
        expected: inFlight?.nonce,
      });
      return;
    }
    clearTimeout(inFlight.deadline);
    this.#inFlight = undefined;
    const seconds = (performance.now() - sentAtMs) / 1000;
    if (request.errorDetail !== null) {
      const message = request.errorDetail.message.slice(0, 2048);
      record.refused({ version: inFlight.table.version, message, table: inFlight.table, at: new Date() });
      this.#needsFullSnapshot = true;
      this.#options.metrics.responseAnswered(inFlight.kind, 'nack', seconds, request.errorDetail.reason);
      inFlight.span.end('nack', { nack_reason: nackReasonLabel(request.errorDetail.reason) });
      this.#options.logger.log('warn', 'proxy refused a table (NACK); it keeps its previous one', {
        nodeId: record.identity.nodeId,
        namespace: record.namespace,
        refusedVersion: inFlight.table.version,
        runningVersion: request.versionInfo,
        message,
      });
    } else {
      if (request.versionInfo !== inFlight.table.version) {
        inFlight.span.end('error', { error_code: 'FHIRMESH_PROTOCOL_VIOLATION' });
        this.#fail(
          new ControllerError(
            'FHIRMESH_PROTOCOL_VIOLATION',
            `the ACK of nonce ${inFlight.nonce} names version '${request.versionInfo.slice(0, 100)}' but that response carried ${inFlight.table.version}: an ACK echoes the response's version_info`,
          ),
        );
        return;
      }
      record.acknowledged(inFlight.table);
      this.#options.metrics.responseAnswered(inFlight.kind, 'ack', seconds);
      inFlight.span.end('ack');
    }
    this.#options.registry.changed();
    this.#pump();
  }

  #tooSlow(expired: InFlight): void {
    const inFlight = this.#inFlight;
    if (inFlight !== expired || this.#phase === 'closed') return;
    this.#options.metrics.slowConsumerDisconnected();
    this.#options.logger.log('warn', 'proxy did not answer within the ACK deadline; closing its stream', {
      nodeId: this.#record?.identity.nodeId,
      namespace: this.#record?.namespace,
      version: inFlight.table.version,
      ackTimeoutMs: this.#options.ackTimeoutMs,
    });
    this.#fail(
      new ControllerError(
        'FHIRMESH_SLOW_CONSUMER',
        `no ACK or NACK for version ${inFlight.table.version} (nonce ${inFlight.nonce}) within ${this.#options.ackTimeoutMs} ms: reconnect to resync with a full snapshot`,
      ),
    );
  }

  #fail(error: unknown): void {
    if (this.#phase === 'closed') return;
    const code = error instanceof ControllerError ? error.code : 'FHIRMESH_INTERNAL';
    this.#options.logger.log(code === 'FHIRMESH_INTERNAL' ? 'error' : 'info', 'discovery stream closed by the controller', {
      nodeId: this.#record?.identity.nodeId,
      streamId: this.#options.streamId,
      code,
      error: error instanceof Error ? error.message : String(error),
    });
    this.#close();
    this.#options.transport.fail(error);
  }

  #close(): void {
    this.#phase = 'closed';
    if (this.#inFlight !== undefined) {
      clearTimeout(this.#inFlight.deadline);
      this.#inFlight.span.end('stream-closed');
    }
    this.#inFlight = undefined;
    this.#unsubscribe?.();
    const record = this.#record;
    if (record === undefined) return;
    this.#options.registry.remove(record);
    this.#options.logger.log('info', 'proxy disconnected', { nodeId: record.identity.nodeId, namespace: record.namespace, streamId: record.streamId });
  }
}
