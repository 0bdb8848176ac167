// A proxy's side of StreamRoutes for controller tests, on a raw grpc-js client from api/discovery:
// opens the stream (TLS and a token if asked), collects responses, ACKs or NACKs, keeps the table.

import * as grpc from '@grpc/grpc-js';
import {
  decodeRoute,
  discoveryProto,
  RouteDecodeError,
  type DiscoveryRequest,
  type DiscoveryResponse__Output,
  type GetProxyStatusResponse__Output,
  type ProxyIdentity,
  type Route__Output,
} from '../../api/discovery/index.ts';

export interface FakeProxyOptions {
  /** The controller's host:port. */
  address: string;
  nodeId?: string;
  namespace?: string;
  /** The version "held from disk" sent in the first message ("" for none). */
  version?: string;
  /** With `table`, what the proxy holds for `version` (so a `current` answer leaves a real table). */
  table?: ReadonlyMap<string, Route__Output>;
  /** Replaces the whole identity (null sends none), for tests of identity validation. */
  identity?: ProxyIdentity | null;
  /**
   * manual: the test ACKs/NACKs. auto: each response is applied as a proxy must (atomically, base
   * version checked, routes decoded) and ACKed, or NACKed with the reason it could not be applied.
   */
  mode?: 'manual' | 'auto';
  /** auto mode: a reason to refuse a route (a route "the proxy cannot apply"), or undefined. */
  refuseRoute?: (route: Route__Output) => string | undefined;
  /** TLS to the controller, as the proxy's --controller-ca / --controller-server-name; plaintext when absent. */
  tls?: ControllerTls;
  /** Sent as `authorization: Bearer <token>` when the stream opens, as the proxy's --token-file. */
  token?: string;
}

export interface ControllerTls {
  /** PEM of the CA the controller's certificate chains to. */
  caPem: string;
  /** The name to check the certificate against; default: the host of the address. */
  serverName?: string;
}

type DiscoveryClient = InstanceType<ReturnType<typeof discoveryProto>['fhirmesh']['v1']['RouteDiscovery']>;

/** A RouteDiscovery client the way the proxy builds one: TLS with a CA and server name, or plaintext. */
export function discoveryClient(address: string, tls?: ControllerTls): DiscoveryClient {
  const credentials = tls === undefined ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(Buffer.from(tls.caPem));
  const options = tls?.serverName === undefined ? {} : { 'grpc.ssl_target_name_override': tls.serverName, 'grpc.default_authority': tls.serverName };
  return new (discoveryProto().fhirmesh.v1.RouteDiscovery)(address, credentials, options);
}

export interface StreamEnd {
  code: grpc.status;
  details: string;
}

export class FakeProxy {
  readonly nodeId: string;
  readonly namespace: string;
  /** Every response received, in order. */
  readonly responses: DiscoveryResponse__Output[] = [];
  /** NACKs this proxy sent (auto mode), with the reason. */
  readonly nacks: { response: DiscoveryResponse__Output; message: string }[] = [];
  /** The table it runs, by destination id, and its version. */
  table: Map<string, Route__Output>;
  version: string;
  /** Resolves with the status the stream ended with. */
  readonly ended: Promise<StreamEnd>;
  #endStatus: StreamEnd | undefined;
  readonly #client: DiscoveryClient;
  readonly #call: grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse__Output>;
  readonly #options: FakeProxyOptions;
  #read = 0;
  readonly #waiters: (() => void)[] = [];

  constructor(options: FakeProxyOptions) {
    this.#options = options;
    this.nodeId = options.nodeId ?? 'gw-test';
    this.namespace = options.namespace ?? 'payers';
    this.version = options.version ?? '';
    this.table = new Map(options.table ?? []);
    this.#client = discoveryClient(options.address, options.tls);
    const metadata = new grpc.Metadata();
    if (options.token !== undefined) metadata.set('authorization', `Bearer ${options.token}`);
    this.#call = this.#client.StreamRoutes(metadata);
    this.ended = new Promise<StreamEnd>((resolve) => {
      this.#call.on('status', (status: grpc.StatusObject) => {
        this.#endStatus = { code: status.code, details: status.details };
        resolve(this.#endStatus);
        this.#wake();
      });
    });
    // A non-OK status also comes as 'error'; the status event above is what tests read.
    this.#call.on('error', () => undefined);
    this.#call.on('data', (response: DiscoveryResponse__Output) => {
      this.responses.push(response);
      if (options.mode === 'auto') this.#applyAndAnswer(response);
      this.#wake();
    });
    const identity =
      options.identity === undefined
        ? { nodeId: this.nodeId, namespace: this.namespace, labels: { app: 'fake' }, proxyVersion: 'fake-proxy/1' }
        : options.identity;
    this.#call.write({ ...(identity === null ? {} : { identity }), versionInfo: this.version, responseNonce: '' });
  }

  /** The next response not yet returned by next(); rejects after timeoutMs or if the stream ends first. */
  async next(timeoutMs = 3_000): Promise<DiscoveryResponse__Output> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const response = this.responses[this.#read];
      if (response !== undefined) {
        this.#read++;
        return response;
      }
      if (this.#endStatus !== undefined) throw new Error(`stream ended (${grpc.status[this.#endStatus.code]}: ${this.#endStatus.details}) with no further response`);
      if (Date.now() >= deadline) throw new Error(`no response within ${timeoutMs} ms`);
      await this.#sleepUntilWoken(deadline - Date.now());
    }
  }

  /** Resolves true if no response beyond those already read arrives within ms. */
  async staysQuiet(ms: number): Promise<boolean> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return this.responses.length === this.#read;
  }

  /** Applies `response` to the table (manual mode helper); returns why it cannot, or undefined. */
  apply(response: DiscoveryResponse__Output): string | undefined {
    if (response.current) {
      if (response.versionInfo !== this.version) return `told current at ${response.versionInfo} but running ${this.version}`;
      return undefined;
    }
    if (!response.fullSnapshot && response.baseVersion !== this.version) {
      return `delta on base ${response.baseVersion} but running ${this.version}`;
    }
    const next = response.fullSnapshot ? new Map<string, Route__Output>() : new Map(this.table);
    for (const destinationId of response.removed) next.delete(destinationId);
    for (const route of response.upserted) {
      try {
        decodeRoute(route);
      } catch (err) {
        if (err instanceof RouteDecodeError) return err.message;
        throw err;
      }
      const refused = this.#options.refuseRoute?.(route);
      if (refused !== undefined) return refused;
      next.set(route.destinationId, route);
    }
    this.table = next;
    this.version = response.versionInfo;
    return undefined;
  }

  ack(response: DiscoveryResponse__Output): void {
    this.#call.write({ versionInfo: response.versionInfo, responseNonce: response.nonce });
  }

  /** NACK: the version still running, and why. */
  nack(response: DiscoveryResponse__Output, message: string): void {
    this.#call.write({ versionInfo: this.version, responseNonce: response.nonce, errorDetail: { message } });
  }

  /** Any message, for tests of protocol violations. */
  send(request: DiscoveryRequest): void {
    this.#call.write(request);
  }

  /** Resolves once the proxy runs `version`. */
  async waitForVersion(version: string, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.version !== version) {
      if (this.#endStatus !== undefined) throw new Error(`stream ended (${grpc.status[this.#endStatus.code]}) before version ${version}`);
      if (Date.now() >= deadline) throw new Error(`still at version ${this.version}, not ${version}, after ${timeoutMs} ms`);
      await this.#sleepUntilWoken(deadline - Date.now());
    }
  }

  /** Half-closes and closes the channel. */
  close(): void {
    this.#call.end();
    this.#call.cancel();
    this.#client.close();
  }

  #applyAndAnswer(response: DiscoveryResponse__Output): void {
    const refused = this.apply(response);
    if (refused === undefined) {
      this.ack(response);
      return;
    }
    this.nacks.push({ response, message: refused });
    this.nack(response, refused);
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  #sleepUntilWoken(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.max(ms, 0));
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

export function connectFakeProxy(options: FakeProxyOptions): FakeProxy {
  return new FakeProxy(options);
}

/** GetProxyStatus over its own short-lived client. */
export async function getProxyStatus(address: string, tls?: ControllerTls): Promise<GetProxyStatusResponse__Output> {
  const client = discoveryClient(address, tls);
  try {
    return await new Promise<GetProxyStatusResponse__Output>((resolve, reject) => {
      client.GetProxyStatus({}, { deadline: Date.now() + 3_000 }, (err, response) => {
        if (err !== null) reject(err);
        else if (response === undefined) reject(new Error('GetProxyStatus gave no response'));
        else resolve(response);
      });
    });
  } finally {
    client.close();
  }
}

/** A route as comparable data: its wire form as plain JSON. */
export function tableAsJson(table: ReadonlyMap<string, Route__Output>): Record<string, unknown> {
  return Object.fromEntries([...table].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, route]) => [id, JSON.parse(JSON.stringify(route))]));
}
