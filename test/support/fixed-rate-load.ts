// An in-process load generator at a fixed rate (open loop: requests are started on schedule, not
// when the last one ends), round-robin over targets, over keep-alive undici Pools. Every request
// ends in one outcome: a status with the proxy's Fhirmesh-Error code if any, or a transport error.

import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

export interface LoadTarget {
  /** Label for the outcome, e.g. `proxy-a steady`. */
  name: string;
  /** `http://127.0.0.1:port` */
  origin: string;
  path: string;
  headers?: Record<string, string>;
}

export interface Outcome {
  target: string;
  /** performance.now() at start and end. */
  startedMs: number;
  endedMs: number;
  /** 0 when the request failed without a response. */
  status: number;
  /** The Fhirmesh-Error header: set when the proxy itself answered. */
  errorCode: string | undefined;
  body: string;
  /** undici's error code (UND_ERR_SOCKET, ECONNRESET...) when there was no response. */
  transportError: string | undefined;
}

export interface LoadReport {
  sent: number;
  /** Due but not started because maxInFlight requests were still running (the generator fell behind). */
  skipped: number;
  seconds: number;
  /** Count per `target status errorCode|transportError`. */
  counts: Map<string, number>;
}

export interface FixedRateLoad {
  /** Stops starting requests, waits for those in flight, closes the pools. */
  stop(): Promise<LoadReport>;
  readonly sent: number;
}

export function outcomeKey(outcome: Outcome): string {
  return `${outcome.target} ${outcome.status === 0 ? `error ${outcome.transportError ?? ''}` : `${outcome.status}${outcome.errorCode === undefined ? '' : ` ${outcome.errorCode}`}`}`;
}

export function startFixedRateLoad(options: {
  targets: readonly LoadTarget[];
  requestsPerSecond: number;
  maxInFlight?: number;
  connectionsPerOrigin?: number;
  onOutcome?: (outcome: Outcome) => void;
}): FixedRateLoad {
  const maxInFlight = options.maxInFlight ?? 512;
  const pools = new Map<string, Pool>();
  for (const target of options.targets) {
    if (!pools.has(target.origin)) {
      pools.set(target.origin, new Pool(target.origin, { connections: options.connectionsPerOrigin ?? 32, pipelining: 1, keepAliveTimeout: 30_000 }));
    }
  }
  const counts = new Map<string, number>();
  const started = performance.now();
  let sent = 0;
  let skipped = 0;
  let due = 0;
  let inFlight = 0;
  let next = 0;
  let drained: (() => void) | undefined;

  const fire = (target: LoadTarget): void => {
    inFlight++;
    sent++;
    const startedMs = performance.now();
    const pool = pools.get(target.origin) as Pool;
    const finish = (outcome: Omit<Outcome, 'target' | 'startedMs' | 'endedMs'>): void => {
      const full: Outcome = { target: target.name, startedMs, endedMs: performance.now(), ...outcome };
      const key = outcomeKey(full);
      counts.set(key, (counts.get(key) ?? 0) + 1);
      options.onOutcome?.(full);
      inFlight--;
      if (inFlight === 0) drained?.();
    };
    pool
      .request({ path: target.path, method: 'GET', headers: { accept: 'application/fhir+json', ...target.headers } })
      .then(async (res) => {
        const body = await res.body.text();
        const code = res.headers['fhirmesh-error'];
        finish({ status: res.statusCode, errorCode: typeof code === 'string' ? code : undefined, body, transportError: undefined });
      })
      .catch((err: unknown) => {
        const code = (err as { code?: string }).code ?? String(err);
        finish({ status: 0, errorCode: undefined, body: '', transportError: code });
      });
  };

  // A 5 ms tick starts whatever is due by now: the rate holds even when timers run late.
  const timer = setInterval(() => {
    const target = Math.floor(((performance.now() - started) / 1000) * options.requestsPerSecond);
    while (due < target) {
      due++;
      if (inFlight >= maxInFlight) {
        skipped++;
        continue;
      }
      fire(options.targets[next++ % options.targets.length] as LoadTarget);
    }
  }, 5);

  return {
    get sent() {
      return sent;
    },
    async stop() {
      clearInterval(timer);
      const seconds = (performance.now() - started) / 1000;
      if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
      await Promise.all([...pools.values()].map((pool) => pool.close()));
      return { sent, skipped, seconds, counts };
    },
  };
}
