// Child of run.ts: closed-loop load (undici Pool, `concurrency` keep-alive connections, no pipelining)
// with no traceparent, as most originators send, so the proxy's own sampler decides. Prints
// `measure-start`, `measure-end` and the result as JSON lines on stdout.
import { Pool } from 'undici';

const { url, concurrency, warmupMs, durationMs } = JSON.parse(process.argv[2] ?? '{}') as { url: string; concurrency: number; warmupMs: number; durationMs: number };
const target = new URL(url);
const pool = new Pool(target.origin, { connections: concurrency, pipelining: 1 });
const headers = { accept: 'application/fhir+json', authorization: `Bearer ${'eyJhbGciOiJSUzI1NiJ9.'.padEnd(180, 'x')}`, 'user-agent': 'fhirmesh-bench/1' };

let phase: 'warmup' | 'measure' | 'done' = 'warmup';
let completed = 0;
let errors = 0;
const say = (message: object): void => void process.stdout.write(JSON.stringify(message) + '\n');

async function worker(): Promise<void> {
  while (phase !== 'done') {
    try {
      const res = await pool.request({ path: target.pathname, method: 'GET', headers });
      await res.body.dump();
      if (phase === 'measure') {
        if (res.statusCode === 200) completed++;
        else errors++;
      }
    } catch {
      if (phase === 'measure') errors++;
    }
  }
}

const workers = Array.from({ length: concurrency }, () => worker());
await new Promise((resolve) => setTimeout(resolve, warmupMs));
phase = 'measure';
say({ type: 'measure-start' });
const started = performance.now();
await new Promise((resolve) => setTimeout(resolve, durationMs));
phase = 'done';
const windowMs = performance.now() - started;
say({ type: 'measure-end' });
await Promise.all(workers);
say({ type: 'result', completed, errors, windowMs });
await pool.close();
