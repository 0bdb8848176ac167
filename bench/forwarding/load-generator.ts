// Child process: the load generator. `concurrency` keep-alive connections (undici Pool,
// pipelining 1); closed loop (each sends again when the last body is read) or a fixed rate.
// Latency runs from dispatch to the last body byte. Run by run.ts, not directly.
import { createHistogram } from 'node:perf_hooks';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import { transactionBundle } from './internal/fixtures.ts';
import type { LoadConfig, LoadResult, ParentMessage } from './internal/messages.ts';
import { sendToParent, serveParent } from './internal/process-stats.ts';

// What a SMART-on-FHIR client sends, more or less: the forwarder has to copy all of it.
const COMMON_HEADERS = [
  'accept', 'application/fhir+json',
  'authorization', `Bearer ${'eyJhbGciOiJSUzI1NiJ9.'.padEnd(180, 'x')}`,
  'user-agent', 'fhirmesh-bench/1',
  'traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  'x-request-id', '7d0c2a5e-2f7b-4d0f-9b1e-3c9f8f0e6a10',
];

type Phase = 'warmup' | 'measure' | 'drain';

class LoadRun {
  readonly config: LoadConfig;
  readonly pool: Pool;
  readonly requestOptions: Dispatcher.DispatchOptions;
  readonly latencyNanos = createHistogram();
  phase: Phase = 'warmup';
  inFlight = 0;
  completed = 0;
  errors = 0;
  unexpectedStatus = 0;
  lateStarts = 0;
  responseBytes = 0;
  /** Fixed-rate runs: the slots with nothing in flight, and requests due but not started. */
  readonly idleSlots: RequestSlot[] = [];
  backlog = 0;
  #onDrained: (() => void) | null = null;

  constructor(config: LoadConfig) {
    this.config = config;
    this.pool = new Pool(`http://127.0.0.1:${config.targetPort}`, {
      connections: config.concurrency,
      pipelining: 1,
      keepAliveTimeout: 60_000,
      keepAliveMaxTimeout: 60_000,
    });
    const body = config.requestBodyBytes > 0 ? transactionBundle(config.requestBodyBytes) : null;
    this.requestOptions = {
      path: config.path,
      method: config.method,
      headers: body === null ? COMMON_HEADERS : [...COMMON_HEADERS, 'content-type', 'application/fhir+json'],
      body,
    };
  }

  finished(slot: RequestSlot, failed: boolean): void {
    this.inFlight -= 1;
    if (this.phase === 'measure') {
      if (failed) this.errors += 1;
      else {
        this.completed += 1;
        this.responseBytes += slot.responseBytes;
        if (slot.statusCode !== this.config.expectedStatus) this.unexpectedStatus += 1;
        this.latencyNanos.record(Math.max(1, Number(process.hrtime.bigint() - slot.startedAt)));
      }
    }
    if (this.phase !== 'drain' && this.config.requestsPerSecond === 0) {
      // A failing target would otherwise be hammered in a tight loop.
      if (failed) setTimeout(() => slot.fire(), 10);
      else slot.fire();
    } else if (this.phase !== 'drain' && this.backlog > 0) {
      this.backlog -= 1;
      if (this.phase === 'measure') this.lateStarts += 1;
      slot.fire();
    } else if (this.phase !== 'drain') {
      this.idleSlots.push(slot);
    } else if (this.inFlight === 0) {
      this.#onDrained?.();
    }
  }

  drained(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#onDrained = resolve;
    });
  }
}

/** One closed-loop client; reused for each of its requests, so the loop allocates little. */
class RequestSlot implements Dispatcher.DispatchHandler {
  readonly #run: LoadRun;
  startedAt = 0n;
  statusCode = 0;
  responseBytes = 0;

  constructor(run: LoadRun) {
    this.#run = run;
  }

  fire(): void {
    this.startedAt = process.hrtime.bigint();
    this.statusCode = 0;
    this.responseBytes = 0;
    this.#run.inFlight += 1;
    this.#run.pool.dispatch(this.#run.requestOptions, this);
  }

  onRequestStart(): void {}

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    this.statusCode = statusCode;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.responseBytes += chunk.length;
  }

  onResponseEnd(): void {
    this.#run.finished(this, false);
  }

  onResponseError(): void {
    this.#run.finished(this, true);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function nanosToMillis(nanos: number): number {
  return Math.round(nanos / 1e3) / 1e3;
}

// Starts requests on a 1 ms tick so that as many have started as the rate says. A request due
// while every slot is busy (the target is slow, or this process was descheduled for a few ms)
// waits for the next free slot; `lateStarts` counts those. Latency is from the actual start.
function paceRequests(run: LoadRun): NodeJS.Timeout {
  const startedAt = process.hrtime.bigint();
  let due = 0;
  return setInterval(() => {
    const nowDue = Math.floor((Number(process.hrtime.bigint() - startedAt) / 1e9) * run.config.requestsPerSecond);
    run.backlog += nowDue - due;
    due = nowDue;
    while (run.backlog > 0) {
      const slot = run.idleSlots.pop();
      if (slot === undefined) break;
      run.backlog -= 1;
      slot.fire();
    }
  }, 1);
}

async function runLoad(config: LoadConfig): Promise<LoadResult> {
  const run = new LoadRun(config);
  let pacer: NodeJS.Timeout | null = null;
  if (config.requestsPerSecond === 0) {
    for (let i = 0; i < config.concurrency; i += 1) new RequestSlot(run).fire();
  } else {
    for (let i = 0; i < config.concurrency; i += 1) run.idleSlots.push(new RequestSlot(run));
    pacer = paceRequests(run);
  }

  await sleep(config.warmupMs);
  run.phase = 'measure';
  const windowStart = process.hrtime.bigint();
  const cpuAtStart = process.cpuUsage();
  sendToParent({ type: 'measure-start' });

  await sleep(config.durationMs);
  run.phase = 'drain';
  if (pacer !== null) clearInterval(pacer);
  const windowMs = Number(process.hrtime.bigint() - windowStart) / 1e6;
  const cpu = process.cpuUsage(cpuAtStart);
  sendToParent({ type: 'measure-end' });

  await run.drained();
  await run.pool.close();
  const latency = run.latencyNanos;
  return {
    completed: run.completed,
    errors: run.errors,
    unexpectedStatus: run.unexpectedStatus,
    lateStarts: run.lateStarts,
    windowMs,
    responseBytes: run.responseBytes,
    latencyMs: {
      p50: nanosToMillis(latency.percentile(50)),
      p90: nanosToMillis(latency.percentile(90)),
      p99: nanosToMillis(latency.percentile(99)),
      max: nanosToMillis(latency.max),
      mean: nanosToMillis(latency.mean),
    },
    loadGeneratorCpuMicros: cpu.user + cpu.system,
  };
}

serveParent();
process.on('message', (message: ParentMessage) => {
  if (message.type !== 'start-load') return;
  runLoad(message.config).then(
    (result) => sendToParent({ type: 'load-result', result }),
    (error: unknown) => {
      console.error('load generator failed:', error);
      process.exit(1);
    },
  );
});
sendToParent({ type: 'ready' });
