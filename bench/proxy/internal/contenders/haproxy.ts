// HAProxy configured for the job fhirmesh does: route by X-Destination through a map to a
// backend (unknown → 404), connections to the upstream kept and reused, bodies streamed,
// X-Destination removed, Host set, Via and Forwarded added. One process, one thread.
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DESTINATION, SEARCH_PATH } from '../fixtures.ts';
import { freePort, waitFor200 } from '../http-probe.ts';
import { PROXY_CORE, processTree, startPinned, stopProcess } from '../processes.ts';
import type { ContenderSpec, RunningContender, StartContext } from './contender.ts';
import { readyOrExit } from './ready.ts';

function haproxyConfig(mapPath: string, port: number, upstreamPort: number): string {
  return `global
  nbthread 1
  # 4,096 connections fit the open-file limit this machine gives a process (20,000).
  maxconn 4096

defaults
  mode http
  timeout connect 5s
  timeout client 65s
  timeout server 65s
  timeout http-keep-alive 65s
  option http-keep-alive
  http-reuse always

frontend originators
  bind 127.0.0.1:${port}
  use_backend %[req.hdr(x-destination),map_str(${mapPath},unknown_destination)]

backend destination_${DESTINATION}
  http-request del-header x-destination
  http-request set-header host 127.0.0.1:${upstreamPort}
  http-request add-header via "1.1 haproxy"
  http-request add-header forwarded "for=%[src];proto=http"
  server upstream 127.0.0.1:${upstreamPort}

backend unknown_destination
  http-request return status 404
`;
}

export async function startHaproxy(spec: ContenderSpec, context: StartContext): Promise<RunningContender> {
  const directory = join(context.workDir, 'haproxy');
  mkdirSync(directory, { recursive: true });
  const port = await freePort();
  const mapPath = join(directory, 'destinations.map');
  writeFileSync(mapPath, `${DESTINATION} destination_${DESTINATION}\n`);
  const configPath = join(directory, 'haproxy.cfg');
  writeFileSync(configPath, haproxyConfig(mapPath, port, context.upstreamPort));
  const startedAt = Date.now();
  // Its start-up notices would interleave with the progress lines: they go to a file.
  const logPath = join(directory, 'haproxy.log');
  const logFd = openSync(logPath, 'w');
  let child: ChildProcess;
  try {
    // -db: stay in the foreground, no master process.
    child = startPinned(spec.name, context.tools.haproxy, ['-db', '-f', configPath, ...spec.args], { core: PROXY_CORE, env: { ...process.env, ...spec.env }, stdio: ['ignore', logFd, logFd] });
  } finally {
    closeSync(logFd);
  }
  const ready = waitFor200(port, SEARCH_PATH, { 'x-destination': DESTINATION }, startedAt, context.readyTimeoutMs, spec.name);
  const readyMs = await readyOrExit(child, spec.name, ready, () => `its messages: ${readFileSync(logPath, 'utf8').trim() || '(none)'}`);
  const pid = child.pid as number;
  return { spec, port, readyMs, pids: () => processTree(pid), accessLogLines: () => null, stop: () => stopProcess(child) };
}
