// The control plane at mesh scale (issue 12): fhirmesh-controller (compiled dist/) with 10,000
// FhirRoutes in 10 namespaces, from a directory (one route per file) and from a real kube-apiserver,
// streaming to 1,000 simulated proxies (real gRPC streams in worker processes that ACK like the real
// proxy) and one real fhirmesh-proxy. Measures one-route changes, a burst, idle CPU, peak RSS and a
// reconnect wave; prints the issue's table with its targets, writes bench/results/control-plane.json,
// and stops every process it started, also on Ctrl-C or failure. Method: docs/performance.md.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBuilt } from '../proxy/internal/tools.ts';
import { directoryMesh } from './internal/directory-mesh.ts';
import { checkKubernetesBinaries, kubernetesMesh } from './internal/kubernetes-mesh.ts';
import { measureSource } from './internal/measure.ts';
import type { SourceRun } from './internal/measure.ts';
import { OptionsError, parseOptions, USAGE } from './internal/options.ts';
import type { BenchOptions } from './internal/options.ts';
import { cleanUpOnExit, stopAll, wasInterrupted } from './internal/processes.ts';
import { startUpstream } from './internal/real-proxy.ts';
import { buildRows, loadLines, markdownTable } from './internal/report.ts';
import { namespaceNames, routeRefs } from './internal/routes.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

function log(line: string): void {
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
}

/** The commit measured, and whether the checkout had uncommitted changes to what is measured. */
function checkout(): { commit: string; dirty: boolean } {
  const git = (args: string[]): string => execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  try {
    return { commit: git(['rev-parse', 'HEAD']), dirty: git(['status', '--porcelain', '--', 'api', 'runtime', 'controller/src', 'proxy/src']) !== '' };
  } catch {
    return { commit: 'unknown', dirty: false };
  }
}

interface Progress {
  readonly started: number;
  measured: { commit: string; dirty: boolean };
  readonly runs: SourceRun[];
}

async function runBenchmark(options: BenchOptions, workRoot: string, progress: Progress): Promise<void> {
  const { started, runs } = progress;
  if (options.sources.includes('kubernetes')) checkKubernetesBinaries();
  ensureBuilt(REPO_ROOT);
  const measured = checkout();
  progress.measured = measured;
  log(`measuring ${measured.commit.slice(0, 12)}${measured.dirty ? ' (with uncommitted changes)' : ''}: ${options.routes} routes in ${options.namespaces} namespaces, ${options.proxies} simulated proxies in ${options.workers} workers + 1 real proxy; load average ${loadavg()[0]?.toFixed(2)} on ${cpus().length} cores`);

  const upstreams = [await startUpstream('upstream-a'), await startUpstream('upstream-b')] as const;
  const namespaces = namespaceNames(options.namespaces);
  const routes = routeRefs(options.routes, namespaces);
  const initialUrl = upstreams[0].url('initial');
  for (const kind of options.sources) {
    const workDir = join(workRoot, kind);
    mkdirSync(workDir, { recursive: true });
    if (kind === 'directory') {
      const source = directoryMesh(workDir, routes, initialUrl);
      log(`directory: ${routes.length} route files written in ${(source.setupMs / 1000).toFixed(2)} s`);
      runs.push(await measureSource(source, { repoRoot: REPO_ROOT, workDir, options, routes, upstreams, log }));
      await source.stop();
    } else {
      log('kubernetes: starting kube-apiserver + etcd and creating the FhirRoutes through the API');
      const source = await kubernetesMesh(REPO_ROOT, workDir, routes, namespaces, initialUrl, options.apiConcurrency);
      log(`kubernetes: ${routes.length} FhirRoutes created in ${(source.setupMs / 1000).toFixed(2)} s (${source.kubeVersion}, ${options.apiConcurrency} requests in flight)`);
      try {
        runs.push(await measureSource(source, { repoRoot: REPO_ROOT, workDir, options, routes, upstreams, log, kubernetes: source }));
      } finally {
        await source.stop();
      }
    }
  }

  report(runs, options, measured, started, undefined);
}

/** Prints the table and writes the JSON: after the last source, or with what was measured when a later one failed. */
function report(runs: readonly SourceRun[], options: BenchOptions, measured: { commit: string; dirty: boolean }, started: number, failure: string | undefined): void {
  const rows = buildRows(runs, options);
  const table = markdownTable(rows, runs.map((run) => run.source));
  const elapsedSeconds = (Date.now() - started) / 1000;
  console.log(
    `\n${options.quick ? 'QUICK (smoke test of the harness, not figures): ' : ''}${failure === undefined ? '' : 'INCOMPLETE (a later source failed): '}${options.routes} FhirRoutes in ${options.namespaces} namespaces, ${options.proxies} simulated proxies + 1 real, ` +
      `commit ${measured.commit.slice(0, 12)}${measured.dirty ? '+dirty' : ''}. Took ${elapsedSeconds.toFixed(0)} s.\n`,
  );
  console.log(table);
  console.log(`\n${loadLines(runs).join('\n')}`);
  const outputPath = resolve(REPO_ROOT, options.outputPath);
  mkdirSync(dirname(outputPath), { recursive: true });
  const processors = cpus();
  writeFileSync(
    outputPath,
    `${JSON.stringify(
      {
        generatedAt: new Date(started).toISOString(),
        command: `node bench/control-plane/run.ts ${process.argv.slice(2).join(' ')}`.trim(),
        elapsedSeconds,
        measured,
        ...(failure === undefined ? {} : { failure }),
        machine: { cpus: processors.length, cpuModel: processors[0]?.model ?? 'unknown', memoryMiB: Math.round(totalmem() / 1048576), kernel: release(), node: process.version, loadAverageAtStart: loadavg() },
        options,
        table: rows,
        runs: runs.map(({ controllerLog: _log, ...run }) => run),
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nwrote ${outputPath}`);
}

async function main(): Promise<void> {
  if (Number(process.versions.node.split('.')[0]) !== 24) {
    console.error(`bench/control-plane needs Node 24 (found ${process.version}); run it as npm run bench:control-plane`);
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
  const workRoot = mkdtempSync(join(tmpdir(), 'fhirmesh-bench-control-plane-'));
  // Logs stay when the run failed: the error names files in there.
  let keepWorkRoot = false;
  cleanUpOnExit(() => {
    if (!keepWorkRoot) rmSync(workRoot, { recursive: true, force: true });
  });
  const progress: Progress = { started: Date.now(), measured: { commit: 'unknown', dirty: false }, runs: [] };
  try {
    await runBenchmark(options, workRoot, progress);
  } catch (error) {
    if (wasInterrupted()) return;
    keepWorkRoot = true;
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    console.error(`bench/control-plane failed: ${message}\n(logs kept in ${workRoot})`);
    if (progress.runs.length > 0) report(progress.runs, options, progress.measured, progress.started, message);
    process.exitCode = 1;
  }
  await stopAll();
  // A keep-alive socket or a timer of a failed phase must not keep the run alive once all is stopped.
  process.exit();
}

await main();
