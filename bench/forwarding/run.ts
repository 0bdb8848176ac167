// Chooses the proxy's forwarding engine by measurement: the same load through http-proxy,
// undici and node:http (each in its own process) to one upstream, plus a direct baseline.
// Prints the tables and writes bench/results/forwarding.json. See docs/performance.md.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConformanceResult } from './internal/conformance.ts';
import { checkEngine, measureLoadCost, measurePlainNodeRss, measureTarget, startUpstream } from './internal/measure.ts';
import type { LoadCost, TargetRun } from './internal/measure.ts';
import { LOADABLE_LIBRARIES } from './internal/messages.ts';
import type { EngineName } from './internal/messages.ts';
import { OptionsError, parseOptions, USAGE } from './internal/options.ts';
import type { BenchOptions } from './internal/options.ts';
import { formatLoadCost, formatScenario, NOISE_FLOOR_PERCENT, ratios, summarize } from './internal/report.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

function packageVersion(name: string): string {
  const manifest = JSON.parse(readFileSync(resolve(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}

function machine(): object {
  const processors = cpus();
  return {
    cpus: processors.length,
    cpuModel: processors[0]?.model ?? 'unknown',
    memoryMB: Math.round(totalmem() / 1024 / 1024),
    kernel: release(),
    node: process.version,
    undici: packageVersion('undici'),
    httpProxy: packageVersion('http-proxy'),
  };
}

async function runBenchmark(options: BenchOptions): Promise<void> {
  const started = new Date();
  const engines = options.targets.filter((target): target is EngineName => target !== 'direct');
  const upstream = await startUpstream();
  try {
    const conformance: Partial<Record<EngineName, ConformanceResult>> = {};
    for (const engine of engines) {
      const result = await checkEngine(engine, upstream.port, options.undiciApi, options.forwarderNodeOptions);
      conformance[engine] = result;
      console.log(`conformance ${engine}: ${result.passed ? 'ok' : `FAILED: ${result.failures.join('; ')}`}`);
      if (!result.passed) throw new Error(`${engine} does not do the same job as the others; fix bench/forwarding/engines/${engine}.ts before measuring it`);
    }

    const loadCosts: LoadCost[] = [];
    for (const library of LOADABLE_LIBRARIES) loadCosts.push(await measureLoadCost(library, options.loadCostSamples));
    const plainNodeRssBytes = await measurePlainNodeRss(options.loadCostSamples);

    const runs: TargetRun[] = [];
    for (let round = 1; round <= options.rounds; round += 1) {
      for (const scenario of options.scenarios) {
        for (const target of options.targets) {
          const run = await measureTarget({
            round,
            scenario,
            target,
            upstream,
            undiciApi: options.undiciApi,
            warmupMs: options.warmupMs,
            durationMs: options.durationMs,
            quietBelowCores: options.quietBelowCores,
            quietMaxWaitMs: options.quietMaxWaitMs,
            maxOtherCpuCores: options.maxOtherCpuCores,
            attempts: options.attempts,
            forwarderNodeOptions: options.forwarderNodeOptions,
          });
          runs.push(run);
          const cpu = run.forwarder === null ? '' : `, forwarder ${run.forwarder.cpuMicrosPerRequest.toFixed(1)} µs/req`;
          console.log(
            `round ${round}/${options.rounds} ${scenario.name.padEnd(15)} ${target.padEnd(10)} ${Math.round(run.requestsPerSecond).toString().padStart(6)} req/s, ` +
              `p99 ${run.load.latencyMs.p99.toFixed(2)} ms${cpu}, failed ${run.load.errors + run.load.unexpectedStatus}, ` +
              `other load ${run.otherCpuCores.toFixed(2)} cores` +
              (run.discardedAttempts.length > 0 ? ` (after ${run.discardedAttempts.length} noisy attempt(s))` : ''),
          );
        }
      }
    }

    const summaries = summarize(runs, options.scenarios, options.targets);
    const found = ratios(summaries, options.scenarios);
    const seconds = options.durationMs / 1000;
    console.log(
      `\n${options.rounds} round(s) × ${seconds} s per target after ${options.warmupMs / 1000} s warm-up; undici via ${options.undiciApi}(); ` +
        `± is half the round-to-round range; ~ marks a ratio within noise (< ${NOISE_FLOOR_PERCENT}% or within the rounds' range).`,
    );
    for (const scenario of options.scenarios) console.log(`\n${formatScenario(scenario, summaries, found)}`);
    console.log(`\nmemory cost of loading a library (RSS after GC, median of ${options.loadCostSamples} fresh processes)\n\n${formatLoadCost(loadCosts, plainNodeRssBytes)}`);

    const outputPath = resolve(REPO_ROOT, options.outputPath);
    mkdirSync(dirname(outputPath), { recursive: true });
    const report = {
      generatedAt: started.toISOString(),
      command: `node bench/forwarding/run.ts ${process.argv.slice(2).join(' ')}`.trim(),
      machine: machine(),
      options: { ...options, scenarios: options.scenarios.map((scenario) => scenario.name) },
      conformance,
      loadCost: loadCosts,
      plainNodeRssBytes,
      summary: summaries,
      ratios: found,
      runs,
    };
    writeFileSync(outputPath, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`\nwrote ${outputPath}`);
  } finally {
    await upstream.handle.stop();
  }
}

async function main(): Promise<void> {
  if (Number(process.versions.node.split('.')[0]) !== 24) {
    console.error(`bench/forwarding needs Node 24 (found ${process.version}); run it as node_modules/.bin/node bench/forwarding/run.ts or npm run bench:forward`);
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
  await runBenchmark(options);
}

await main();
