// The shape every forwarding engine takes in this benchmark: one request listener for a
// node:http server that forwards to a single upstream, and a way to release its pool.
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface UpstreamAddress {
  readonly hostname: string;
  readonly port: number;
}

export interface ForwardingEngine {
  readonly handleRequest: (req: IncomingMessage, res: ServerResponse) => void;
  readonly close: () => Promise<void>;
}

// Upper bound on pooled upstream connections, the same for every engine. The load never has
// more than 32 requests in flight, so no engine ever queues for a connection.
export const MAX_UPSTREAM_CONNECTIONS = 128;

// Longer than any run, so no engine pays for reconnects mid-measurement.
export const KEEP_ALIVE_MS = 60_000;

export function authorityOf(upstream: UpstreamAddress): string {
  return `${upstream.hostname}:${upstream.port}`;
}
