// The messages between the orchestrator (workers.ts) and its simulated-proxy workers (proxy-worker.ts).
import type { ControllerEndpoint } from './simulated-proxy.ts';

export interface ProxySpec {
  readonly nodeId: string;
  readonly namespace: string;
}

export interface WorkerStats {
  /** The worker's longest event-loop delay since the phase began (the largest over the workers). */
  readonly loopDelayMaxMs: number;
  readonly proxies: number;
  readonly connected: number;
  readonly nacks: number;
  readonly responses: number;
  /** Stream ends by gRPC status name, since the streams were opened. */
  readonly ends: Readonly<Record<string, number>>;
  /** The first details seen per status. */
  readonly endDetails: Readonly<Record<string, string>>;
  /** Largest full snapshot seen per namespace (routes). */
  readonly snapshotRoutes: Readonly<Record<string, number>>;
  readonly rssBytes: number;
}

export interface WaitResult {
  /** Every proxy waited for got there before the timeout. */
  readonly complete: boolean;
  readonly proxies: number;
  readonly done: number;
  /** Wall-clock ms of the last ACK that completed a proxy (0: none did). */
  readonly lastAtMs: number;
  readonly outOfScopeResponses: number;
  readonly stats: WorkerStats;
}

export type WorkerRequest = { readonly id: number } & (
  | { readonly op: 'open'; readonly endpoint: ControllerEndpoint; readonly proxies: readonly ProxySpec[]; readonly tokens: Readonly<Record<string, string>> }
  | { readonly op: 'waitFirstTables'; readonly timeoutMs: number }
  | { readonly op: 'watch'; readonly expected: readonly (readonly [string, string, string])[] }
  | { readonly op: 'waitWatched'; readonly timeoutMs: number }
  | { readonly op: 'stats' }
  | { readonly op: 'closeAll' }
);

export type WorkerReply = { readonly id: number } & ({ readonly result: unknown } | { readonly error: string });
