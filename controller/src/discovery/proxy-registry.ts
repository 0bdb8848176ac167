// The proxies with an open stream and what each runs: the table it last ACKed and its last NACK.
// Read by GetProxyStatus, the desired statuses (through viewsOfRecords), convergence and proxy reports.

import type { ScopedTable } from '../compile/index.ts';
import type { ControllerError } from '../errors.ts';
import type { SyncState } from '../telemetry/metrics.ts';
import type { ProxyIdentityClaim } from './identity.ts';

export interface ProxyNack {
  /** The version refused. */
  version: string;
  /** The proxy's error detail. */
  message: string;
  /** The table refused: which route generations the NACK was about. */
  table: ScopedTable;
  at: Date;
}

/** One stream's proxy. Changed only by its stream, through the methods below. */
export class ProxyRecord {
  readonly streamId: number;
  readonly identity: ProxyIdentityClaim;
  /** The namespace it is served: the one its token proves in Kubernetes mode, the one it claims in standalone mode. */
  readonly namespace: string;
  readonly connectedAt: Date;
  /** Closes the stream with this error (a newer stream from the same proxy, shutdown). */
  readonly disconnect: (error: ControllerError) => void;
  #acked: ScopedTable | undefined;
  #nack: ProxyNack | undefined;

  constructor(init: { streamId: number; identity: ProxyIdentityClaim; namespace: string; connectedAt: Date; disconnect: (error: ControllerError) => void }) {
    this.streamId = init.streamId;
    this.identity = init.identity;
    this.namespace = init.namespace;
    this.connectedAt = init.connectedAt;
    this.disconnect = init.disconnect;
  }

  /** The table the proxy ACKed on this stream; undefined before its first ACK. */
  get acked(): ScopedTable | undefined {
    return this.#acked;
  }

  get ackedVersion(): string {
    return this.#acked?.version ?? '';
  }

  /** Its last answer, when that was a NACK. */
  get nack(): ProxyNack | undefined {
    return this.#nack;
  }

  acknowledged(table: ScopedTable): void {
    this.#acked = table;
    this.#nack = undefined;
  }

  refused(nack: ProxyNack): void {
    this.#nack = nack;
  }

  /** SYNCED when it runs the target; otherwise NACKED if its last answer refused, else STALE. */
  syncState(targetVersion: string): SyncState {
    if (this.#acked !== undefined && this.#acked.version === targetVersion) return 'SYNCED';
    return this.#nack === undefined ? 'STALE' : 'NACKED';
  }
}

export class ProxyRegistry {
  readonly #records = new Set<ProxyRecord>();
  readonly #listeners: (() => void)[] = [];

  /** Adds a stream's proxy; an older stream of the same node in the same namespace is closed (it is stale). */
  add(record: ProxyRecord, supersede: (older: ProxyRecord) => void): void {
    for (const older of [...this.#records]) {
      if (older.identity.nodeId === record.identity.nodeId && older.namespace === record.namespace) {
        this.#records.delete(older);
        supersede(older);
      }
    }
    this.#records.add(record);
    this.changed();
  }

  remove(record: ProxyRecord): void {
    if (this.#records.delete(record)) this.changed();
  }

  /** Tells listeners (status, convergence) that a proxy's progress changed. */
  changed(): void {
    for (const listener of this.#listeners) listener();
  }

  /** Listeners run synchronously on every change: they must only schedule work. */
  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }

  list(): ProxyRecord[] {
    return [...this.#records];
  }

  /** Whether this record's stream is still the one registered (convergence asks per answer: O(1)). */
  has(record: ProxyRecord): boolean {
    return this.#records.has(record);
  }

  get size(): number {
    return this.#records.size;
  }
}
