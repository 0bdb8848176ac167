// One simulated proxy: a real grpc-js stream of api/fhirmesh/v1 discovery on a connection of its own,
// applying each response as the real proxy does (base version checked, every upserted route decoded)
// and ACKing (version_info and nonce echoed) or NACKing. It keeps only what the benchmark reads: the
// version it runs and the routes it has been told to watch for, not the decoded table.
import * as grpc from '@grpc/grpc-js';
import { decodeRoute, discoveryProto, Interner, RouteDecodeError } from '../../../api/discovery/index.ts';
import type { DiscoveryRequest, DiscoveryResponse__Output } from '../../../api/discovery/index.ts';

export interface ControllerEndpoint {
  readonly address: string;
  /** TLS as the proxy's --controller-ca / --controller-server-name; plaintext when absent. */
  readonly tls?: { readonly caPem: string; readonly serverName: string };
}

export interface SimulatedProxyOptions {
  readonly endpoint: ControllerEndpoint;
  readonly nodeId: string;
  readonly namespace: string;
  /** Sent as `authorization: Bearer`, as the proxy's --token-file. */
  readonly token?: string;
  /** Called after every ACK or NACK written, with the time it was written (wall-clock ms). */
  readonly onAnswered: (proxy: SimulatedProxy, response: DiscoveryResponse__Output, acked: boolean, atMs: number) => void;
  readonly onEnded: (proxy: SimulatedProxy, code: grpc.status, details: string) => void;
}

type Stream = grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse__Output>;
type Client = InstanceType<ReturnType<typeof discoveryProto>['fhirmesh']['v1']['RouteDiscovery']>;

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

export class SimulatedProxy {
  readonly nodeId: string;
  readonly namespace: string;
  /** The version this proxy runs ("" before its first table). */
  version = '';
  /** When it ACKed its first full table (wall-clock ms), 0 until then. */
  firstTableAtMs = 0;
  /** Routes in its last full snapshot (a check that scoping holds). */
  snapshotRoutes = 0;
  responses = 0;
  nacks = 0;
  /** Destination id → backend URL it waits to see; empty when it waits for nothing. */
  pending = new Map<string, string>();
  /** When `pending` became empty (wall-clock ms of the ACK that emptied it). */
  satisfiedAtMs = 0;
  #intern = new Interner();
  readonly #options: SimulatedProxyOptions;
  readonly #client: Client;
  #stream: Stream | undefined;
  #closed = false;

  constructor(options: SimulatedProxyOptions) {
    this.#options = options;
    this.nodeId = options.nodeId;
    this.namespace = options.namespace;
    const { endpoint } = options;
    const credentials = endpoint.tls === undefined ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(Buffer.from(endpoint.tls.caPem));
    this.#client = new (discoveryProto().fhirmesh.v1.RouteDiscovery)(endpoint.address, credentials, {
      ...(endpoint.tls === undefined ? {} : { 'grpc.ssl_target_name_override': endpoint.tls.serverName, 'grpc.default_authority': endpoint.tls.serverName }),
      // One connection per proxy, as in a mesh: grpc-js otherwise shares one subchannel among every
      // client of the same target, and a thousand proxies would be one HTTP/2 connection.
      'grpc.use_local_subchannel_pool': 1,
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    });
  }

  open(): void {
    const metadata = new grpc.Metadata({ waitForReady: true });
    if (this.#options.token !== undefined) metadata.set('authorization', `Bearer ${this.#options.token}`);
    const stream = this.#client.StreamRoutes(metadata);
    this.#stream = stream;
    stream.on('data', (response: DiscoveryResponse__Output) => this.#answer(stream, response));
    stream.on('error', () => undefined);
    stream.on('status', (status: grpc.StatusObject) => {
      if (this.#stream === stream) this.#stream = undefined;
      this.#options.onEnded(this, status.code, status.details);
    });
    stream.write({
      identity: { nodeId: this.nodeId, namespace: this.namespace, labels: { app: 'bench-control-plane' }, proxyVersion: 'bench-simulated-proxy/1' },
      versionInfo: this.version,
      responseNonce: '',
    });
  }

  get connected(): boolean {
    return this.#stream !== undefined;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Waits for `expected` (destination id → backend URL) to be in the table; checked at once against nothing (a fresh wait). */
  watchFor(expected: ReadonlyMap<string, string>): void {
    this.pending = new Map(expected);
    this.satisfiedAtMs = 0;
  }

  close(): void {
    this.#closed = true;
    this.#stream?.cancel();
    this.#client.close();
  }

  #answer(stream: Stream, response: DiscoveryResponse__Output): void {
    this.responses += 1;
    const refused = this.#apply(response);
    const acked = refused === undefined;
    if (acked) stream.write({ versionInfo: response.versionInfo, responseNonce: response.nonce });
    else {
      this.nacks += 1;
      stream.write({ versionInfo: this.version, responseNonce: response.nonce, errorDetail: refused });
    }
    const atMs = wallMs();
    if (acked && response.fullSnapshot && this.firstTableAtMs === 0) this.firstTableAtMs = atMs;
    if (acked && this.pending.size === 0 && this.satisfiedAtMs === 0) this.satisfiedAtMs = atMs;
    this.#options.onAnswered(this, response, acked, atMs);
  }

  /** Why the response cannot be applied, or undefined once it is (as proxy/src/discovery/discovery-client.ts). */
  #apply(response: DiscoveryResponse__Output): { message: string; reason: string } | undefined {
    if (response.current) {
      return response.versionInfo === this.version ? undefined : { message: `told current at ${response.versionInfo} but running ${this.version}`, reason: 'FHIRMESH_NOT_CURRENT' };
    }
    if (!response.fullSnapshot && response.baseVersion !== this.version) {
      return { message: `delta is based on ${response.baseVersion} but this proxy runs ${this.version}`, reason: 'FHIRMESH_DELTA_BASE_MISMATCH' };
    }
    const intern = response.fullSnapshot ? new Interner() : this.#intern;
    try {
      for (const wire of response.upserted) decodeRoute(wire, intern);
    } catch (error) {
      if (error instanceof RouteDecodeError) return { message: error.message, reason: 'FHIRMESH_TABLE_INVALID' };
      throw error;
    }
    if (response.fullSnapshot) {
      this.#intern = intern;
      this.snapshotRoutes = response.upserted.length;
    }
    for (const wire of response.upserted) {
      const wanted = this.pending.get(wire.destinationId);
      if (wanted !== undefined && wire.backend?.baseUrl === wanted) this.pending.delete(wire.destinationId);
    }
    this.version = response.versionInfo;
    return undefined;
  }
}
