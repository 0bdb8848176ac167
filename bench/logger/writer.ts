// Child process of run.ts: writes N access lines with one logger to stdout (a pipe the parent drains,
// as a container runtime does) and reports its own CPU time and RSS on fd 3. Not run directly.
import fs from 'node:fs';
import { createLogger } from '../../runtime/index.ts';

const [impl = 'runtime', linesText = '200000'] = process.argv.slice(2);
const lines = Number(linesText);

// The proxy's access line, as request-telemetry.ts writes it with tracing on.
function fields(i: number): Record<string, unknown> {
  return {
    destination: 'acme-payer',
    method: 'GET',
    interaction: 'read',
    route: 'GET Patient/{id}',
    rule: '(default)',
    backend: 'http://fhir.acme.internal:8080',
    status: 200,
    origin: 'destination',
    durationMs: 1.3 + (i % 7) / 10,
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
  };
}

type Log = (i: number) => void;
let log: Log;
let flush: () => Promise<void>;
switch (impl) {
  case 'runtime': {
    const logger = createLogger({ component: 'proxy' });
    log = (i) => logger.log('info', 'access', fields(i));
    // process.stdout queues writes a full pipe cannot take: wait until they are all written.
    flush = () => new Promise((resolve) => process.stdout.write('', () => resolve()));
    break;
  }
  case 'pino-sync':
  case 'pino-async':
  case 'pino-defaults': {
    const { pino } = await import('pino');
    const destination = pino.destination(impl === 'pino-async' ? { dest: 1, sync: false, minLength: 4096 } : { dest: 1, sync: true });
    // pino-sync and pino-async write the runtime logger's shape (ISO time, level name); pino-defaults
    // is pino at its fastest (epoch milliseconds, numeric level, pid and hostname).
    const options =
      impl === 'pino-defaults'
        ? {}
        : { base: { component: 'proxy' }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label: string) => ({ level: label }) } };
    const logger = pino(options, destination);
    log = (i) => logger.info(fields(i), 'access');
    flush = () => new Promise((resolve) => destination.flush(() => resolve()));
    break;
  }
  default:
    throw new Error(`unknown logger ${impl}: runtime | pino-sync | pino-async | pino-defaults`);
}

// As a server logs: a few lines per turn of the event loop (here 16, as 16 connections would), the
// loop turning between them, so a logger that writes once per turn is measured as it runs.
const PER_TURN = 16;
async function logAll(count: number): Promise<void> {
  for (let i = 0; i < count; i += PER_TURN) {
    for (let j = i; j < Math.min(count, i + PER_TURN); j++) log(j);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

// Warm up the JIT, then measure.
await logAll(20_000);
await flush();
const before = process.cpuUsage();
const started = performance.now();
await logAll(lines);
await flush();
const cpu = process.cpuUsage(before);
const wallMs = performance.now() - started;
fs.writeSync(3, JSON.stringify({ impl, lines, cpuMicros: cpu.user + cpu.system, wallMs, rssBytes: process.memoryUsage.rss() }) + '\n');
