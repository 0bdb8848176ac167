// fhirmesh's data-plane cost beside nginx, HAProxy and Node's floor (issue 9), in one run:
// each round starts every contender fresh on core 0 and loads it from core 1; then the route
// sweep and the 1 GiB streams. Prints one table, writes bench/results/proxy.json, and stops
// every process it started, also on Ctrl-C or failure. Method: docs/performance.md.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineBusyCores } from '../forwarding/internal/machine-load.ts';
import { measureContenderQuietly } from './internal/measure-contender.ts';
import type { ContenderRun, MeasureContext } from './internal/measure-contender.ts';
import { OptionsError, parseOptions, USAGE } from './internal/options.ts';
import type { BenchOptions } from './internal/options.ts';
import { cleanUpOnExit, LOAD_CORE, pinSelf, PROXY_CORE, stopAll } from './internal/processes.ts';
import { buildReport, otherLoad, summarize, warnings } from './internal/report.ts';
import { writeRoutes } from './internal/routes.ts';
import { measureStreaming } from './internal/streaming.ts';
import type { StreamingRun } from './internal/streaming.ts';
import { measureSweepPoint } from './internal/sweep.ts';
import type { SweepRun } from './internal/sweep.ts';
import { ensureBuilt, ensureTools } from './internal/tools.ts';
import { Upstream } from './internal/upstream-protocol.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Contenders measured streaming 1 GiB: the proxies and Node's floor, not the variants. */
const STREAMING_CONTENDERS = new Set(['fhirmesh', 'nginx', 'haproxy', 'node-http', 'undici']);

function describe(run: ContenderRun): string {
  const s = run.saturation;
  const u = run.rates.uniform;
  const b = run.rates.bursty;
  const cpu = run.contender === 'direct' ? '' : ` ${s.contenderCpuMicrosPerRequest.toFixed(1)} µs/req,`;
  return (
    `round ${run.round} ${run.contender.padEnd(20)} ${Math.round(s.requestsPerSecond).toString().padStart(6)} req/s,${cpu} ` +
    `uniform p50/p99 ${u.latency.p50Ms.toFixed(2)}/${u.latency.p99Ms.toFixed(2)} ms, bursty ${b.latency.p50Ms.toFixed(2)}/${b.latency.p99Ms.toFixed(2)} ms, ` +
    `RSS ${(run.idle.rssBytes / 1048576).toFixed(0)}→${(run.end.peakRssBytes / 1048576).toFixed(0)} MiB, ` +
    `other load ≤ ${Math.max(s.otherCores, u.otherCores, b.otherCores).toFixed(2)} cores` +
    (run.discardedAttempts.length > 0 ? ` (after ${run.discardedAttempts.length} noisier attempt(s))` : '') +
    (run.conformanceFailures.length > 0 ? `, CONFORMANCE: ${run.conformanceFailures.join('; ')}` : '')
  );
}

async function runBenchmark(options: BenchOptions, workRoot: string): Promise<void> {
  const started = Date.now();
  const tools = ensureTools();
  ensureBuilt(REPO_ROOT);
  pinSelf(LOAD_CORE);
  const loadAtStart = await machineBusyCores(1_000);
  console.log(`machine busy ${loadAtStart.toFixed(2)} cores before start (of ${cpus().length}); proxy on core ${PROXY_CORE}, upstream and load on core ${LOAD_CORE}`);

  const upstream = await Upstream.start();
  try {
    const context: MeasureContext = { repoRoot: REPO_ROOT, tools, upstream, workRoot, routes: writeRoutes(workRoot, 10, upstream.port), options };
    const runs: ContenderRun[] = [];
    for (let round = 1; round <= options.rounds; round += 1) {
      for (const spec of options.contenders) {
        const run = await measureContenderQuietly(spec, round, context);
        runs.push(run);
        console.log(describe(run));
      }
    }

    const sweep: SweepRun[] = [];
    const fhirmesh = options.contenders.find((spec) => spec.name === 'fhirmesh');
    if (fhirmesh !== undefined) {
      for (const mode of options.sweepModes) {
        for (const count of options.sweepSizes) {
          const point = await measureSweepPoint(mode, count, fhirmesh, context);
          sweep.push(point);
          console.log(
            `sweep ${mode.padEnd(10)} ${count.toString().padStart(7)} routes: ready in ${(point.readyMs / 1000).toFixed(2)} s, ` +
              `RSS ${(point.ready.rssBytes / 1048576).toFixed(0)} MiB (peak ${(point.end.peakRssBytes / 1048576).toFixed(0)}), ` +
              `${point.saturation.contenderCpuMicrosPerRequest.toFixed(1)} µs/req over all destinations`,
          );
        }
      }
    }

    const streaming: StreamingRun[] = [];
    for (const spec of options.contenders.filter((candidate) => STREAMING_CONTENDERS.has(candidate.name))) {
      const run = await measureStreaming(spec, context);
      streaming.push(run);
      const line = (direction: StreamingRun['up']): string =>
        `${direction.complete ? '' : 'INCOMPLETE '}+${(direction.rssGrowthBytes / 1048576).toFixed(1)} MiB at ${direction.mebibytesPerSecond.toFixed(0)} MiB/s`;
      console.log(`stream ${spec.name.padEnd(10)} up ${line(run.up)}, down ${line(run.down)}`);
    }

    const summaries = summarize(runs, options.contenders.map((spec) => spec.name));
    const report = buildReport(summaries, runs, sweep, streaming, options);
    const found = warnings(summaries, sweep, streaming, runs);
    const load = otherLoad(runs, sweep);
    const elapsedSeconds = (Date.now() - started) / 1000;
    console.log(
      `\n${options.quick ? 'QUICK (smoke test of the harness, not figures): ' : ''}${options.rounds} round(s); saturation ${options.durationSeconds} s after ${options.warmupSeconds} s warm-up ` +
        `(wrk, ${options.connections} connections); ${options.rate} req/s for ${options.durationSeconds} s per arrival mode (fortio, ${options.rateConnections} connections); ` +
        `medians over rounds. Other load per window: median ${load.median.toFixed(2)}, max ${load.max.toFixed(2)} cores. Took ${elapsedSeconds.toFixed(0)} s.\n`,
    );
    console.log(report.markdown);
    if (found.length > 0) console.log(`\nwarnings:\n${found.map((line) => `- ${line}`).join('\n')}`);

    const outputPath = resolve(REPO_ROOT, options.outputPath);
    mkdirSync(dirname(outputPath), { recursive: true });
    const processors = cpus();
    writeFileSync(
      outputPath,
      `${JSON.stringify(
        {
          generatedAt: new Date(started).toISOString(),
          command: `node bench/proxy/run.ts ${process.argv.slice(2).join(' ')}`.trim(),
          elapsedSeconds,
          machine: { cpus: processors.length, cpuModel: processors[0]?.model ?? 'unknown', memoryMiB: Math.round(totalmem() / 1048576), kernel: release(), node: process.version, busyCoresAtStart: loadAtStart },
          tools: tools.versions,
          options,
          otherLoad: load,
          warnings: found,
          table: report.rows,
          summary: summaries,
          runs,
          sweep,
          streaming,
        },
        null,
        2,
      )}\n`,
    );
    console.log(`\nwrote ${outputPath}`);
  } finally {
    await upstream.stop();
    await stopAll();
  }
}

async function main(): Promise<void> {
  if (Number(process.versions.node.split('.')[0]) !== 24) {
    console.error(`bench/proxy needs Node 24 (found ${process.version}); run it as npm run bench:proxy`);
    process.exit(1);
  }
  if (process.platform !== 'linux' || cpus().length < 2) {
    console.error('bench/proxy needs Linux with at least 2 cores: the proxy gets core 0, the load generator and upstream core 1');
    process.exit(1);
  }
  let options: BenchOptions;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof OptionsError || (error instanceof TypeError && 'code' in error))) throw error;
    console.error(`${error.message}\n${USAGE}`);
    process.exit(2);
  }
  const workRoot = mkdtempSync(join(tmpdir(), 'fhirmesh-bench-proxy-'));
  // Configs and logs stay when the run failed: the error names files in there.
  let keepWorkRoot = false;
  cleanUpOnExit(() => {
    if (!keepWorkRoot) rmSync(workRoot, { recursive: true, force: true });
  });
  try {
    await runBenchmark(options, workRoot);
  } catch (error) {
    keepWorkRoot = true;
    console.error(`bench/proxy failed: ${error instanceof Error ? error.message : String(error)}\n(configs and logs kept in ${workRoot})`);
    process.exitCode = 1;
  }
  await stopAll();
}

await main();
