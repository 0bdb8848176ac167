// Spans of the controller's work on a route change: each compile is a span, and the pushes to proxies
// and the status writes it causes are spans linked to it. OTel-free: internal/otel-change-tracer.ts
// implements it, loaded only when tracing is configured; NO_TRACING costs nothing.

/** An opaque reference to the compile span of a change, for the spans it causes to link to. */
export interface ChangeRef {
  readonly changeRef: true;
}

export interface CompileFacts {
  sequence: number;
  /** Why the compile ran: the source's first read, or a change it reported. */
  trigger: 'first-read' | 'change';
}

export interface TranslationFacts {
  routes: number;
  version: string;
}

export interface PushFacts {
  nodeId: string;
  namespace: string;
  kind: 'full' | 'delta' | 'current';
  version: string;
  upserted: number;
  removed: number;
}

/** A span in progress; `end` takes the outcome (ack | nack, written | gone | ...). */
export interface OpenSpan {
  end(outcome: string, detail?: Record<string, string>): void;
}

export interface ChangeTracer {
  /** Runs one compile inside a span; `ref` is undefined when the span is not sampled or tracing is off. */
  compile<T>(facts: CompileFacts, run: () => T, describe: (result: T) => TranslationFacts): { result: T; ref: ChangeRef | undefined };
  /** One discovery response, from sent to ACK or NACK, linked to the change whose table it carries. */
  push(cause: ChangeRef | undefined, facts: PushFacts): OpenSpan;
  /** One status refresh or one status PATCH of a route, linked to the change in force. */
  status(cause: ChangeRef | undefined, operation: 'reconcile' | 'write', route?: string): OpenSpan;
  shutdown(): Promise<void>;
}

const CLOSED: OpenSpan = { end: () => undefined };

export const NO_TRACING: ChangeTracer = {
  compile: (_facts, run) => ({ result: run(), ref: undefined }),
  push: () => CLOSED,
  status: () => CLOSED,
  shutdown: () => Promise.resolve(),
};
