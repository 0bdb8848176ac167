// What tracing costs the proxy: the real fhirmesh-proxy (proxy/src/main.ts) forwarding GET reads to a
// local destination under closed-loop load, with tracing off (no OTEL_EXPORTER_OTLP_ENDPOINT), on at
// 1 % (parentbased_traceidratio 0.01) and on at 100 % (parentbased_always_on), exporting OTLP/HTTP to
// a local sink that accepts and drops spans. Modes are interleaved over rounds, each round starting
// with the next mode; the median is kept, and the spread printed.
// Prints req/s and the proxy's CPU µs per request (from /proc/<pid>/stat), and writes
// bench/results/tracing.json; then the telemetry seam alone (seam.ts), free of network and machine noise.
// Usage: node bench/tracing/run.ts [--rounds 3] [--seconds 6] [--concurrency 16] [--modes off,0,1,100]
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '6' }, concurrency: { type: 'string', default: '16' }, modes: { type: 'string', default: 'off,1,100' } },
});
const rounds = Number(values.rounds);
const durationMs = Number(values.seconds) * 1000;
const concurrency = Number(values.concurrency);
const CLOCK_TICKS = 100;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

interface Mode {
  key: string;
  name: string;
  env: Record<string, string>;
}

/** Reads JSON lines from a child's stdout and hands each to `onLine`. */
function jsonLines(child: ChildProcess, onLine: (line: Record<string, unknown>) => void): void {
  let partial = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    partial += chunk;
    let at: number;
    while ((at = partial.indexOf('\n')) >= 0) {
      const text = partial.slice(0, at);
      partial = partial.slice(at + 1);
      try {
        onLine(JSON.parse(text) as Record<string, unknown>);
      } catch {
        // not a JSON line
      }
    }
  });
}

function waitForLine(child: ChildProcess, match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    jsonLines(child, (line) => {
      if (match(line)) resolve(line);
    });
    child.once('exit', (code) => reject(new Error(`child exited (${code}) early`)));
  });
}

/** utime + stime of a process, in microseconds. */
function cpuMicros(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS) * 1e6;
}

function rssMiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round((Number(match?.[1] ?? 0) / 1024) * 10) / 10;
}

// The OTLP sink: accepts every export and counts them (the exporter's cost is the proxy's).
let exports = 0;
let exportedBytes = 0;
const sink = http.createServer((req, res) => {
  req.on('data', (chunk: Buffer) => (exportedBytes += chunk.length));
  req.on('end', () => {
    exports++;
    res.writeHead(200, { 'Content-Type': 'application/x-protobuf', 'Content-Length': 0 });
    res.end();
  });
});
await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
const sinkUrl = `http://127.0.0.1:${(sink.address() as { port: number }).port}`;

const upstream = spawn(process.execPath, [path.join(here, 'upstream.ts')], { stdio: ['pipe', 'pipe', 'inherit'] });
const upstreamPort = Number((await waitForLine(upstream, (l) => typeof l.port === 'number')).port);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-bench-tracing-'));
const routes = path.join(dir, 'routes.yaml');
fs.writeFileSync(
  routes,
  `apiVersion: fhirmesh.io/v1alpha1
kind: FhirRoute
metadata: { name: acme, namespace: default, creationTimestamp: "2026-01-01T00:00:00Z" }
spec:
  destination: acme
  addressing: { pathSegment: true }
  backend: { url: http://127.0.0.1:${upstreamPort}/fhir }
`,
);

const tracing = (sampler: string, arg?: string): Record<string, string> => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl,
  OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
  OTEL_TRACES_SAMPLER: sampler,
  ...(arg === undefined ? {} : { OTEL_TRACES_SAMPLER_ARG: arg }),
});
const ALL_MODES: Mode[] = [
  { key: 'off', name: 'off', env: {} },
  // The SDK loaded and every span dropped at the sampler: what loading it costs, apart from recording.
  { key: '0', name: 'on, 0 % sampled', env: tracing('always_off') },
  { key: '1', name: 'on, 1 % sampled', env: tracing('parentbased_traceidratio', '0.01') },
  { key: '100', name: 'on, 100 % sampled', env: tracing('parentbased_always_on') },
];
const modes = String(values.modes)
  .split(',')
  .map((key) => ALL_MODES.find((m) => m.key === key.trim()) ?? (() => { throw new Error(`--modes: unknown mode '${key}' (off, 0, 1, 100)`); })());

interface Sample {
  requestsPerSecond: number;
  cpuMicrosPerRequest: number;
  /** Before any request, a second after start. */
  idleRssMiB: number;
  rssMiB: number;
  errors: number;
}

async function runOnce(mode: Mode): Promise<Sample> {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('OTEL_') && !name.startsWith('FHIRMESH_')) env[name] = value;
  const proxy = spawn(
    process.execPath,
    [path.join(repo, 'proxy/src/main.ts'), '--routes', routes, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--intermediary-id', 'gw-bench', '--no-access-log'],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...env, ...mode.env } },
  );
  const listening = await waitForLine(proxy, (l) => l.msg === 'proxy listening');
  const pid = proxy.pid ?? 0;
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const idleRss = rssMiB(pid);
  const load = spawn(process.execPath, [path.join(here, 'load.ts'), JSON.stringify({ url: `${String(listening.url)}/acme/Patient/p1`, concurrency, warmupMs: 2_000, durationMs })], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let cpuAtStart = 0;
  let cpuAtEnd = 0;
  const result = await new Promise<Record<string, unknown>>((resolve, reject) => {
    jsonLines(load, (line) => {
      if (line.type === 'measure-start') cpuAtStart = cpuMicros(pid);
      else if (line.type === 'measure-end') cpuAtEnd = cpuMicros(pid);
      else if (line.type === 'result') resolve(line);
    });
    load.once('exit', (code) => code !== 0 && reject(new Error(`load generator exited ${code}`)));
  });
  const rss = rssMiB(pid);
  proxy.kill('SIGTERM');
  await new Promise((resolve) => proxy.once('exit', resolve));
  const completed = Number(result.completed);
  return {
    requestsPerSecond: Math.round(completed / (Number(result.windowMs) / 1000)),
    cpuMicrosPerRequest: Math.round(((cpuAtEnd - cpuAtStart) / completed) * 10) / 10,
    idleRssMiB: idleRss,
    rssMiB: rss,
    errors: Number(result.errors),
  };
}

/** The seam alone (bench/tracing/seam.ts), median of 3 fresh processes per mode. */
async function seamCost(mode: Mode): Promise<{ cpuMicrosPerRequest: number; rssMiB: number }> {
  const runs: { cpuMicrosPerRequest: number; rssBytes: number }[] = [];
  for (let i = 0; i < 3; i++) {
    const env: NodeJS.ProcessEnv = {};
    for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('OTEL_')) env[name] = value;
    const child = spawn(process.execPath, [path.join(here, 'seam.ts'), mode.key, '200000'], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...env, ...mode.env } });
    runs.push((await waitForLine(child, (l) => typeof l.cpuMicrosPerRequest === 'number')) as unknown as { cpuMicrosPerRequest: number; rssBytes: number });
  }
  return {
    cpuMicrosPerRequest: Math.round(median(runs.map((r) => r.cpuMicrosPerRequest)) * 100) / 100,
    rssMiB: Math.round((median(runs.map((r) => r.rssBytes)) / 1048576) * 10) / 10,
  };
}
const seam = new Map<string, { cpuMicrosPerRequest: number; rssMiB: number }>();
for (const mode of modes) {
  seam.set(mode.name, await seamCost(mode));
  console.error(`seam ${mode.name}: ${seam.get(mode.name)?.cpuMicrosPerRequest} µs CPU/req`);
}

const samples = new Map<string, Sample[]>(modes.map((m) => [m.name, []]));
for (let round = 1; round <= rounds; round++) {
  // Each round starts with another mode: a machine whose load drifts cannot favour one position.
  const order = modes.map((_, i) => modes[(i + round - 1) % modes.length] as Mode);
  for (const mode of order) {
    const sample = await runOnce(mode);
    samples.get(mode.name)?.push(sample);
    console.error(`round ${round}/${rounds} ${mode.name}: ${sample.requestsPerSecond} req/s, ${sample.cpuMicrosPerRequest} µs CPU/req, RSS ${sample.idleRssMiB} idle, ${sample.rssMiB} MiB under load`);
  }
}
upstream.stdin?.end();
sink.close();
fs.rmSync(dir, { recursive: true, force: true });

const table = modes.map((mode) => {
  const of = samples.get(mode.name) ?? [];
  return {
    mode: mode.name,
    requestsPerSecond: median(of.map((s) => s.requestsPerSecond)),
    cpuMicrosPerRequest: median(of.map((s) => s.cpuMicrosPerRequest)),
    cpuRange: [Math.min(...of.map((s) => s.cpuMicrosPerRequest)), Math.max(...of.map((s) => s.cpuMicrosPerRequest))],
    idleRssMiB: median(of.map((s) => s.idleRssMiB)),
    rssMiB: median(of.map((s) => s.rssMiB)),
    errors: of.reduce((n, s) => n + s.errors, 0),
  };
});
const off = table[0];
console.log(`GET read through one proxy, ${concurrency} connections closed loop, ${durationMs / 1000} s per run, median of ${rounds} interleaved rounds, Node ${process.version}, ${os.cpus().length} CPUs`);
console.log('| tracing | req/s | proxy CPU µs/req | (min–max over rounds) | vs off | RSS idle MiB | RSS under load MiB | errors |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const row of table) {
  const delta = off === undefined ? 0 : ((row.cpuMicrosPerRequest - off.cpuMicrosPerRequest) / off.cpuMicrosPerRequest) * 100;
  console.log(`| ${row.mode} | ${row.requestsPerSecond} | ${row.cpuMicrosPerRequest} | ${row.cpuRange[0]}–${row.cpuRange[1]} | ${row === off ? '—' : `${delta >= 0 ? '+' : ''}${delta.toFixed(1)} %`} | ${row.idleRssMiB} | ${row.rssMiB} | ${row.errors} |`);
}
console.log(`OTLP exports received: ${exports} (${Math.round(exportedBytes / 1024)} KiB)`);
console.log('');
console.log('the telemetry seam alone (bench/tracing/seam.ts: metrics + spans + export, no network), median of 3 processes × 200000 requests');
console.log('| tracing | seam CPU µs/req | vs off | RSS MiB |');
console.log('| --- | --- | --- | --- |');
const seamOff = seam.get(modes[0]?.name ?? '');
for (const mode of modes) {
  const row = seam.get(mode.name);
  if (row === undefined) continue;
  const delta = seamOff === undefined || row === seamOff ? '—' : `+${(row.cpuMicrosPerRequest - seamOff.cpuMicrosPerRequest).toFixed(2)} µs`;
  console.log(`| ${mode.name} | ${row.cpuMicrosPerRequest} | ${delta} | ${row.rssMiB} |`);
}
const out = path.join(repo, 'bench/results/tracing.json');
fs.writeFileSync(
  out,
  JSON.stringify({ node: process.version, cpus: os.cpus().length, concurrency, durationMs, rounds, results: table, seam: Object.fromEntries(seam), samples: Object.fromEntries(samples) }, null, 2) + '\n',
);
console.log(`wrote ${path.relative(process.cwd(), out)}`);
