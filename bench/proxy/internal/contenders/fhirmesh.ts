// fhirmesh as it ships: the compiled dist/ run as the fhirmesh-proxy binary (the image's
// entrypoint), on the proxy's core, fed by a routes file or by a controller already serving.
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, waitFor200 } from '../http-probe.ts';
import { PROXY_CORE, processTree, startPinned, stopProcess } from '../processes.ts';
import type { ContenderSpec, RunningContender, StartContext } from './contender.ts';
import { readyOrExit } from './ready.ts';

/** Access lines are JSON with this field; counting them shows the variant really logged. */
const ACCESS_LINE = '"msg":"access"';

export async function startFhirmesh(spec: ContenderSpec, context: StartContext): Promise<RunningContender> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const source = context.controllerGrpcPort === undefined
    ? ['--routes', context.routes.file]
    : ['--controller', `127.0.0.1:${context.controllerGrpcPort}`, '--namespace', 'default', '--node-id', 'bench-proxy'];
  const args = [
    join(context.repoRoot, 'dist/proxy/src/main.js'),
    ...source,
    '--listen', `127.0.0.1:${port}`,
    '--admin-listen', `127.0.0.1:${adminPort}`,
    '--intermediary-id', 'bench-proxy',
    // Nothing is in flight when a run stops it; no reason to wait the default 25 s.
    '--shutdown-grace', '1',
    ...spec.args,
  ];
  // stdout (start-up lines and the access log) goes to a file, as a container runtime's pipe
  // would take it away; the runner never reads it during a window.
  const logPath = join(context.workDir, 'fhirmesh.stdout.log');
  const logFd = openSync(logPath, 'w');
  const startedAt = Date.now();
  let child: ChildProcess;
  try {
    child = startPinned(spec.name, process.execPath, args, { core: PROXY_CORE, env: { ...process.env, ...spec.env }, stdio: ['ignore', logFd, 'inherit'] });
  } finally {
    closeSync(logFd);
  }
  const readyMs = await readyOrExit(child, spec.name, waitFor200(adminPort, '/readyz', {}, startedAt, context.readyTimeoutMs, spec.name), () => `see ${logPath} and its stderr above`);
  const pid = child.pid as number;
  return {
    spec,
    port,
    readyMs,
    pids: () => processTree(pid),
    accessLogLines: () => readFileSync(logPath, 'utf8').split(ACCESS_LINE).length - 1,
    stop: () => stopProcess(child, 5_000),
  };
}
