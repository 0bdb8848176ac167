// The IPC messages between run.ts and its child processes (upstream, forwarders, load
// generator, load-cost probes). Every child answers `stats` the same way.

export type EngineName = 'http-proxy' | 'undici' | 'node-http';
export const ENGINE_NAMES: readonly EngineName[] = ['http-proxy', 'undici', 'node-http'];

export type UndiciApi = 'stream' | 'dispatch';
export const UNDICI_APIS: readonly UndiciApi[] = ['stream', 'dispatch'];

/**
 * What a load-cost probe imports. node:http twice: as an ES module import (its namespace loads
 * Node's bundled undici) and through process.getBuiltinModule (what the forwarders here use).
 */
export const LOADABLE_LIBRARIES = ['none', 'node:http (import)', 'node:http (getBuiltinModule)', 'http-proxy', 'undici'] as const;
export type LoadableLibrary = (typeof LOADABLE_LIBRARIES)[number];

/** forwarder.ts takes these as one JSON argument. */
export interface ForwarderArguments {
  readonly engine: EngineName;
  readonly upstreamPort: number;
  readonly undiciApi: UndiciApi;
}

export interface ProcessSample {
  readonly cpuUserMicros: number;
  readonly cpuSystemMicros: number;
  readonly rssBytes: number;
  /** VmHWM from /proc/self/status: the resident high-water mark since the process started. */
  readonly peakRssBytes: number;
  readonly heapUsedBytes: number;
  /** V8 heap reserved, and memory outside it (Buffers, WebAssembly): where RSS goes. */
  readonly heapTotalBytes: number;
  readonly externalBytes: number;
}

export interface StatsRequest {
  readonly type: 'stats';
  readonly requestId: number;
  /** Collect garbage first (children run with --expose-gc), for a steady-state RSS. */
  readonly collectGarbage: boolean;
}

export interface StatsReply {
  readonly type: 'stats-reply';
  readonly requestId: number;
  readonly sample: ProcessSample;
}

export interface ListeningMessage {
  readonly type: 'listening';
  readonly port: number;
  /** RSS after start-up, garbage collected, before any request. */
  readonly idle: ProcessSample;
}

export interface LoadConfig {
  readonly targetPort: number;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly requestBodyBytes: number;
  readonly expectedStatus: number;
  readonly concurrency: number;
  /** 0: closed loop, each connection sends again at once. Otherwise a fixed arrival rate. */
  readonly requestsPerSecond: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

export interface StartLoadMessage {
  readonly type: 'start-load';
  readonly config: LoadConfig;
}

export interface LoadResult {
  readonly completed: number;
  readonly errors: number;
  readonly unexpectedStatus: number;
  /** Fixed-rate runs: requests that were due while all `concurrency` were in flight. */
  readonly lateStarts: number;
  readonly windowMs: number;
  readonly responseBytes: number;
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number; readonly mean: number };
  readonly loadGeneratorCpuMicros: number;
}

export type LoadPhaseMessage = { readonly type: 'measure-start' } | { readonly type: 'measure-end' };

export interface LoadResultMessage {
  readonly type: 'load-result';
  readonly result: LoadResult;
}

export interface LoadCostMessage {
  readonly type: 'load-cost';
  readonly before: ProcessSample;
  readonly after: ProcessSample;
  /** Whether the import pulled in Node's own bundled copy of undici (internal/deps/undici). */
  readonly loadedBundledUndici: boolean;
}

/** The load generator is listening for `start-load`. */
export interface ReadyMessage {
  readonly type: 'ready';
}

export type ChildMessage = ReadyMessage | StatsReply | ListeningMessage | LoadPhaseMessage | LoadResultMessage | LoadCostMessage;
export type ParentMessage = StatsRequest | StartLoadMessage;
