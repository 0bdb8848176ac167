// Runs the real fhirmesh-proxy binary (Node 24 from node_modules, proxy/src/main.ts) as a child
// process for tests: waits for "proxy listening", exposes its URLs, log lines, RSS, signals and exit.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const NODE_BIN = path.join(REPO_ROOT, 'node_modules/.bin/node');
export const PROXY_MAIN = path.join(REPO_ROOT, 'proxy/src/main.ts');

/** One JSON log line of the proxy, tagged with the stream it came on (warn/error go to stderr). */
export type LogLine = Record<string, unknown> & { msg?: unknown; level?: unknown; stream: 'stdout' | 'stderr' };

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnProxyOptions {
  /** Passed as --routes; omit to rely on FHIRMESH_ROUTES in `env`. */
  routesFile?: string;
  /** --listen value (default 127.0.0.1:0); null leaves the flag out. */
  listen?: string | null;
  /** --admin-listen value (default 127.0.0.1:0); null leaves the flag out. */
  adminListen?: string | null;
  /** --intermediary-id (default gw-test); null leaves the flag out. */
  intermediaryId?: string | null;
  /** Further flags, e.g. ['--shutdown-grace', '1']. */
  args?: string[];
  /** Added to the environment; the test's own FHIRMESH_* variables are never inherited. */
  env?: Record<string, string>;
  readyTimeoutMs?: number;
}

export interface SpawnedProxy {
  child: ChildProcess;
  pid: number;
  url: string;
  adminUrl: string;
  /** Every JSON line so far, stdout and stderr, in arrival order. */
  logs: LogLine[];
  /** Raw stderr text so far (non-JSON output, e.g. a crash). */
  stderrText(): string;
  /** Resolves with the first line (already seen or still to come) that matches. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  signal(signal: NodeJS.Signals): void;
  /** Resolves when the process has exited; rejects after timeoutMs. */
  waitForExit(timeoutMs?: number): Promise<ExitStatus>;
  /** Resident set size in bytes, from /proc/<pid>/status VmRSS. */
  rssBytes(): number;
  /** For afterAll: SIGKILL if still running, then wait for the exit. */
  kill(): Promise<void>;
}

function childEnv(extra: Record<string, string> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('FHIRMESH_')) env[name] = value;
  return { ...env, ...extra };
}

function proxyArgs(options: SpawnProxyOptions): string[] {
  const args = [PROXY_MAIN];
  if (options.routesFile !== undefined) args.push('--routes', options.routesFile);
  const listen = options.listen === undefined ? '127.0.0.1:0' : options.listen;
  if (listen !== null) args.push('--listen', listen);
  const adminListen = options.adminListen === undefined ? '127.0.0.1:0' : options.adminListen;
  if (adminListen !== null) args.push('--admin-listen', adminListen);
  const intermediaryId = options.intermediaryId === undefined ? 'gw-test' : options.intermediaryId;
  if (intermediaryId !== null) args.push('--intermediary-id', intermediaryId);
  return [...args, ...(options.args ?? [])];
}

/** Splits a byte stream into lines and hands each complete one to `onLine`. */
function readLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    partial += chunk;
    let at: number;
    while ((at = partial.indexOf('\n')) >= 0) {
      onLine(partial.slice(0, at));
      partial = partial.slice(at + 1);
    }
  });
  stream.on('end', () => {
    if (partial !== '') onLine(partial);
  });
}

export async function spawnProxy(options: SpawnProxyOptions): Promise<SpawnedProxy> {
  const child = spawn(NODE_BIN, proxyArgs(options), { env: childEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: LogLine[] = [];
  let stderr = '';
  const waiters: { match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];
  let exitStatus: ExitStatus | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      exitStatus = { code, signal };
      resolve(exitStatus);
    });
  });

  const onLine = (stream: 'stdout' | 'stderr') => (text: string) => {
    if (stream === 'stderr') stderr += text + '\n';
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof parsed !== 'object' || parsed === null) return;
    const line = { ...(parsed as Record<string, unknown>), stream } as LogLine;
    logs.push(line);
    for (const waiter of [...waiters]) {
      if (waiter.match(line)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  };
  if (child.stdout === null || child.stderr === null) throw new Error('child has no stdout/stderr pipes');
  readLines(child.stdout, onLine('stdout'));
  readLines(child.stderr, onLine('stderr'));

  const waitForLog = (match: (line: LogLine) => boolean, timeoutMs = 5_000): Promise<LogLine> => {
    const seen = logs.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise<LogLine>((resolve, reject) => {
      const waiter = {
        match,
        resolve: (line: LogLine) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(new Error(`no matching proxy log line within ${timeoutMs} ms; stderr:\n${stderr}`));
      }, timeoutMs);
      waiters.push(waiter);
    });
  };

  const waitForExit = async (timeoutMs = 10_000): Promise<ExitStatus> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        exited,
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`proxy did not exit within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  };

  const kill = async (): Promise<void> => {
    if (exitStatus === undefined) child.kill('SIGKILL');
    await exited;
  };

  // The listening line, or the process's early death, whichever comes first.
  let listening: LogLine;
  try {
    listening = await Promise.race([
      waitForLog((line) => line.msg === 'proxy listening', options.readyTimeoutMs ?? 10_000),
      exited.then((status): never => {
        throw new Error(`proxy exited (${JSON.stringify(status)}) before listening; stderr:\n${stderr}`);
      }),
    ]);
  } catch (err) {
    await kill();
    throw err;
  }
  if (typeof listening.url !== 'string' || typeof listening.adminUrl !== 'string') {
    await kill();
    throw new Error(`"proxy listening" line without url/adminUrl: ${JSON.stringify(listening)}`);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error('spawned proxy has no pid');

  return {
    child,
    pid,
    url: listening.url,
    adminUrl: listening.adminUrl,
    logs,
    stderrText: () => stderr,
    waitForLog,
    signal: (signal) => {
      child.kill(signal);
    },
    waitForExit,
    rssBytes: () => rssBytesOf(pid),
    kill,
  };
}

/** Runs the proxy binary to completion (for flags it must refuse); kills it after timeoutMs. */
export async function runProxyToExit(
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<ExitStatus & { stdout: string; stderr: string }> {
  const child = spawn(NODE_BIN, [PROXY_MAIN, ...args], { env: childEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 10_000);
  // 'close', not 'exit': the pipes are drained by then.
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    child.once('close', (c, s) => resolve([c, s]));
  });
  clearTimeout(timer);
  return { code, signal, stdout, stderr };
}

export function rssBytesOf(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (m === null) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/** A temp directory holding routes.yaml, rewritten the way editors and ConfigMap mounts do. */
export interface RoutesDir {
  dir: string;
  file: string;
  /** Write a temp file beside it, then rename over it: the proxy never sees half a file. */
  write(yaml: string): void;
  remove(): void;
}

export function makeRoutesDir(yaml: string): RoutesDir {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-proc-'));
  const file = path.join(dir, 'routes.yaml');
  fs.writeFileSync(file, yaml);
  let writes = 0;
  return {
    dir,
    file,
    write(text) {
      const tmp = path.join(dir, `.routes.yaml.${++writes}.tmp`);
      fs.writeFileSync(tmp, text);
      fs.renameSync(tmp, file);
    },
    remove() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Reads one un-labelled sample from Prometheus text, e.g. fhirmesh_proxy_table_rejected_total. */
export async function metricValue(adminUrl: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m === null ? undefined : Number(m[1]);
}
