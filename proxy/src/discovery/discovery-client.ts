// The proxy's side of route discovery (api/fhirmesh/v1/discovery.proto): one stream to the
// controller, responses applied atomically (decoding only the routes a delta names) then ACKed once
// saved, or NACKed; reconnect with jittered backoff.

import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import {
  decodeRoute,
  Interner,
  discoveryProto,
  type NackReason,
  type DiscoveryRequest,
  type DiscoveryResponse__Output,
} from '../../../api/discovery/index.ts';
import type { CompiledRoute } from '../../../api/index.ts';
import type { TableHolder } from '../table/table-holder.ts';
import type { Logger } from '../telemetry/logger.ts';
import { saveState } from './state-file.ts';



export interface DiscoveryIdentity {
  nodeId: string;
  namespace: string;
  labels: Record<string, string>;
  proxyVersion: string;
}

export interface DiscoveryClientOptions {
  controller: string;
  identity: DiscoveryIdentity;
  holder: TableHolder;
  logger: Logger;
  stateDir: string | undefined;
  /** The table loaded from the state dir, the base for the first delta. */
  initial?: CompiledRoute[];
  /** TLS to the controller: its CA bundle (PEM) and the name its certificate carries. */
  tls?: { caPem: string; serverName?: string };
  /** A projected service-account token, read again on every connect (the kubelet rotates it). */
  tokenFile?: string;
  backoff?: { initialMs: number; maxMs: number };
  onConnectionChange?: (connected: boolean) => void;
  onRefused?: () => void;
}

type Stream = grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse__Output>;

const DEFAULT_BACKOFF = { initialMs: 250, maxMs: 10_000 };

export class DiscoveryClient {
  readonly #options: DiscoveryClientOptions;
  readonly #client: InstanceType<ReturnType<typeof discoveryProto>['fhirmesh']['v1']['RouteDiscovery']>;
  /** Routes of the table in force by destination id, decoded once: deltas apply to these. */
  #routes = new Map<string, CompiledRoute>();
  /** Equal strings and lists shared across the table; a full snapshot starts a fresh one. */
  #intern = new Interner();
  /** Responses are applied one after another: a save in progress finishes before the next apply. */
  #applying: Promise<void> = Promise.resolve();
  #stream: Stream | undefined;
  #attempt = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: DiscoveryClientOptions) {
    this.#options = options;
    for (const route of options.initial ?? []) this.#routes.set(route.destinationId, route);
    const Client = discoveryProto().fhirmesh.v1.RouteDiscovery;
    const { initialMs, maxMs } = options.backoff ?? DEFAULT_BACKOFF;
    const credentials = options.tls === undefined ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(Buffer.from(options.tls.caPem));
    this.#client = new Client(options.controller, credentials, {
      ...(options.tls?.serverName !== undefined ? { 'grpc.ssl_target_name_override': options.tls.serverName, 'grpc.default_authority': options.tls.serverName } : {}),
      // A controller that vanishes without a FIN must still be noticed.
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      // Reconnecting is the channel's job (exponential, jittered); its default ceiling is 120 s.
      'grpc.initial_reconnect_backoff_ms': initialMs,
      'grpc.max_reconnect_backoff_ms': maxMs,
      // A full snapshot carries PEMs; the 4 MiB default would cap a table at a few thousand routes.
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    });
  }

  start(): void {
    this.#connect();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#stream?.cancel();
    this.#client.close();
  }

  #connect(): void {
    if (this.#stopped) return;
    // waitForReady: while the controller is away the call waits for the channel's reconnect instead
    // of failing at once, so this loop only handles streams that end after they were established.
    const metadata = new grpc.Metadata({ waitForReady: true });
    const token = this.#readToken();
    if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
    const stream = this.#client.StreamRoutes(metadata);
    this.#stream = stream;
    const { holder, identity } = this.#options;
    stream.write({
      identity,
      versionInfo: holder.loaded ? holder.current.version : '',
    });
    stream.on('data', (response: DiscoveryResponse__Output) => {
      this.#attempt = 0;
      this.#options.onConnectionChange?.(true);
      this.#applying = this.#applying.then(async () => {
        const answer = await this.#apply(response);
        if (this.#stream === stream) stream.write(answer);
      });
    });
    // 'error' comes only for a non-OK end; 'status' comes for every end, so it drives the reconnect.
    stream.on('error', () => undefined);
    stream.on('status', (status: grpc.StatusObject) => {
      if (status.code !== grpc.status.CANCELLED) {
        this.#options.logger.log('warn', 'route discovery stream ended', { controller: this.#options.controller, code: grpc.status[status.code], detail: status.details });
      }
      if (this.#stream !== stream) return;
      this.#stream = undefined;
      this.#options.holder.unconfirmed();
      this.#options.onConnectionChange?.(false);
      this.#scheduleReconnect();
    });
  }

  #readToken(): string | undefined {
    if (this.#options.tokenFile === undefined) return undefined;
    try {
      return fs.readFileSync(this.#options.tokenFile, 'utf8').trim();
    } catch (err) {
      // Connect anyway: the controller's UNAUTHENTICATED answer says more than silence would.
      this.#options.logger.log('error', 'cannot read the service-account token file', { tokenFile: this.#options.tokenFile, error: (err as NodeJS.ErrnoException).code ?? String(err) });
      return undefined;
    }
  }

  #scheduleReconnect(): void {
    if (this.#stopped) return;
    const { initialMs, maxMs } = this.#options.backoff ?? DEFAULT_BACKOFF;
    // Full jitter: proxies restarted together do not reconnect in lockstep.
    const ceiling = Math.min(maxMs, initialMs * 2 ** this.#attempt);
    this.#attempt++;
    this.#retryTimer = setTimeout(() => this.#connect(), Math.random() * ceiling);
  }

  /** Applies one response; resolves with the ACK (once the table is saved) or the NACK to send. */
  async #apply(response: DiscoveryResponse__Output): Promise<DiscoveryRequest> {
    const { holder, logger } = this.#options;
    const running = holder.loaded ? holder.current.version : '';
    const nack = (reason: NackReason, message: string): DiscoveryRequest => {
      holder.unconfirmed();
      this.#options.onRefused?.();
      logger.log('warn', 'route table update refused; keeping the table in force', { version: response.versionInfo, running, reason, detail: message });
      return { versionInfo: running, responseNonce: response.nonce, errorDetail: { message, reason } };
    };
    if (response.current) {
      if (response.versionInfo !== running) return nack('FHIRMESH_NOT_CURRENT', `told current at ${response.versionInfo} but running ${running || 'nothing'}`);
      holder.confirmed();
      return { versionInfo: running, responseNonce: response.nonce };
    }
    let next: Map<string, CompiledRoute>;
    let routes: CompiledRoute[];
    try {
      if (response.fullSnapshot) {
        const intern = new Interner();
        next = new Map(response.upserted.map((wire) => [wire.destinationId, decodeRoute(wire, intern)]));
        this.#intern = intern;
      } else {
        if (response.baseVersion !== running) return nack('FHIRMESH_DELTA_BASE_MISMATCH', `delta is based on ${response.baseVersion} but this proxy runs ${running || 'nothing'}`);
        // Only what the delta names is decoded; every other route keeps its decoded form.
        next = new Map(this.#routes);
        for (const id of response.removed) next.delete(id);
        for (const wire of response.upserted) next.set(wire.destinationId, decodeRoute(wire, this.#intern));
      }
      routes = [...next.values()];
      // Building the table checks the lookup maps (duplicate hosts) and every install check
      // (backends' TLS material) before anything is swapped.
      holder.install({ version: response.versionInfo, routes });
    } catch (err) {
      return nack('FHIRMESH_TABLE_INVALID', err instanceof Error ? err.message : String(err));
    }
    this.#routes = next;
    holder.confirmed();
    logger.log('info', 'route table applied', { version: response.versionInfo, routes: routes.length, full: response.fullSnapshot });
    if (this.#options.stateDir !== undefined) {
      try {
        // The ACK waits for the table to be on disk: a proxy restarted after it serves the same table.
        await saveState(this.#options.stateDir, response.versionInfo, routes);
      } catch (err) {
        // The table is in force; only the restart-without-controller path is weakened. Say so.
        logger.log('error', 'could not save the route table to the state dir', { stateDir: this.#options.stateDir, error: String(err) });
      }
    }
    return { versionInfo: response.versionInfo, responseNonce: response.nonce };
  }
}
