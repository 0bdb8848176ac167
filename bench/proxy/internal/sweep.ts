// The route sweep: fhirmesh with 10 / 10,000 / 100,000 routes, from a routes file and from a
// real controller (fhirmesh-controller --routes-dir) that has already read the same manifests.
// For each: time from spawn to /readyz 200, RSS once ready, and the cost of a request spread at
// random over every destination (a lookup must not get dearer as the table grows).
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ContenderSpec } from './contenders/contender.ts';
import { readyOrExit } from './contenders/ready.ts';
import { startContender } from './contenders/start.ts';
import { freePort, waitFor200 } from './http-probe.ts';
import { runSaturation } from './load.ts';
import type { LoadRun } from './load.ts';
import { startContext } from './measure-contender.ts';
import type { MeasureContext } from './measure-contender.ts';
import type { SweepMode } from './options.ts';
import { LOAD_CORE, processTree, startPinned, stopProcess, treeMemory } from './processes.ts';
import type { Memory } from './processes.ts';
import { writeRoutes } from './routes.ts';
import type { RoutesOnDisk } from './routes.ts';

export interface SweepRun {
  readonly mode: SweepMode;
  readonly routes: number;
  readonly routesFileBytes: number;
  /** The proxy's spawn to /readyz 200 (controller mode: the controller was ready before). */
  readonly readyMs: number;
  readonly ready: Memory;
  readonly saturation: LoadRun;
  readonly end: Memory;
  /** Controller mode: the controller's own spawn to /readyz and its RSS once the proxy is synced. */
  readonly controller: { readonly readyMs: number; readonly memory: Memory } | null;
}

interface RunningController {
  readonly grpcPort: number;
  readonly readyMs: number;
  readonly child: ChildProcess;
}

async function startController(context: MeasureContext, routes: RoutesOnDisk, workDir: string): Promise<RunningController> {
  const [grpcPort, adminPort] = [await freePort(), await freePort()];
  const args = [
    join(context.repoRoot, 'dist/controller/src/main.js'),
    '--routes-dir', routes.directory,
    '--grpc-listen', `127.0.0.1:${grpcPort}`,
    '--admin-listen', `127.0.0.1:${adminPort}`,
    '--log-level', 'warn',
  ];
  // Its warning about plaintext gRPC (true, and meant: loopback) would land among the progress lines.
  const logPath = join(workDir, 'controller.log');
  const logFd = openSync(logPath, 'w');
  const startedAt = Date.now();
  let child: ChildProcess;
  try {
    // Beside the load generator: the controller is part of the control plane, not the sidecar.
    child = startPinned('fhirmesh-controller', process.execPath, args, { core: LOAD_CORE, stdio: ['ignore', logFd, logFd] });
  } finally {
    closeSync(logFd);
  }
  const ready = waitFor200(adminPort, '/readyz', {}, startedAt, 300_000, `fhirmesh-controller with ${routes.count} routes`);
  const readyMs = await readyOrExit(child, 'fhirmesh-controller', ready, () => `its log: ${readFileSync(logPath, 'utf8').trim().slice(-2000)}`);
  return { grpcPort, readyMs, child };
}

export async function measureSweepPoint(mode: SweepMode, count: number, spec: ContenderSpec, context: MeasureContext): Promise<SweepRun> {
  const routes = writeRoutes(context.workRoot, count, context.upstream.port);
  const workDir = mkdtempSync(join(context.workRoot, `sweep-${mode}-${count}-`));
  const controller = mode === 'controller' ? await startController(context, routes, workDir) : null;
  try {
    const start = startContext(context, `sweep-${mode}-${count}-proxy`, routes, controller?.grpcPort);
    const running = await startContender(spec, start);
    try {
      await new Promise((resolve) => setTimeout(resolve, context.options.settleMs));
      const ready = treeMemory(running.pids());
      const controllerMemory = controller === null ? null : treeMemory(processTree(controller.child.pid as number));
      const target = { port: running.port, contenderPids: running.pids(), upstreamPid: context.upstream.pid };
      const load = { tools: context.tools, target, workDir: start.workDir, connections: context.options.connections, destinations: count };
      if (context.options.warmupSeconds > 0) await runSaturation({ ...load, durationSeconds: context.options.warmupSeconds });
      const saturation = await runSaturation({ ...load, durationSeconds: context.options.sweepDurationSeconds });
      return {
        mode,
        routes: count,
        routesFileBytes: routes.bytes,
        readyMs: running.readyMs,
        ready,
        saturation,
        end: treeMemory(running.pids()),
        controller: controller === null || controllerMemory === null ? null : { readyMs: controller.readyMs, memory: controllerMemory },
      };
    } finally {
      await running.stop();
    }
  } finally {
    if (controller !== null) await stopProcess(controller.child, 5_000);
  }
}
