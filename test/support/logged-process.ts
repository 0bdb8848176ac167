// A fhirmesh binary under test (proxy or controller) as a child process whose JSON log lines, on
// stdout and stderr, are parsed as they arrive: a test waits for a line or the exit, never a fixed time.

import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
/** The pinned Node 24 from node_modules, not whatever `node` comes first on PATH. */
export const NODE_BIN = path.join(REPO_ROOT, 'node_modules/.bin/node');

/** One line: the JSON object it held (or `raw`, for a line that is not JSON), tagged with its stream. */
export type LogLine = Record<string, unknown> & { msg?: unknown; level?: unknown; raw?: string; stream: 'stdout' | 'stderr' };

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LoggedProcess {
  child: ChildProcess;
  pid: number;
  /** Every line so far, both streams, in arrival order. */
  logs: LogLine[];
  /** Raw stderr text so far (a crash, or a one-line refusal). */
  stderrText(): string;
  /** Resolves with the first line (already seen or still to come) that matches. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves once the process has exited. */
  exited: Promise<ExitStatus>;
  /** `exited`, or a rejection after timeoutMs. */
  waitForExit(timeoutMs?: number): Promise<ExitStatus>;
  signal(signal: NodeJS.Signals): void;
  /** SIGTERM (or `signal`), then the exit. */
  stop(signal?: NodeJS.Signals): Promise<ExitStatus>;
  /** For afterAll: SIGKILL if still running, then wait for the exit. */
  kill(): Promise<void>;
}

export interface StartLoggedOptions {
  /** Added to the environment; the runner's own FHIRMESH_* variables are never inherited. */
  env?: Record<string, string> | undefined;
  /** The line that says the process is up. */
  ready: (line: LogLine) => boolean;
  readyTimeoutMs?: number | undefined;
}

/** The runner's environment without its FHIRMESH_* variables, plus `extra`. */
export function childEnv(extra: Record<string, string> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('FHIRMESH_')) env[name] = value;
  return { ...env, ...extra };
}

/**
 * Runs `node script args…` and resolves once it logs a line `ready` accepts; rejects (with its
 * stderr) if it exits first or is not ready in time, and then leaves no process behind.
 * FHIRMESH_TEST_LOGS=1 echoes every line, prefixed with `name`.
 */
export async function startLogged(name: string, script: string, args: string[], options: StartLoggedOptions): Promise<{ process: LoggedProcess; ready: LogLine }> {
  const child = spawn(NODE_BIN, [script, ...args], { env: childEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: LogLine[] = [];
  let stderr = '';
  const waiters: { match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];
  let exitStatus: ExitStatus | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => resolve((exitStatus = { code, signal })));
    // A spawn failure emits 'error' and no 'exit'.
    child.once('error', (err) => {
      stderr += `could not start ${name}: ${err.message}\n`;
      resolve((exitStatus = { code: -1, signal: null }));
    });
  });
  const echo = process.env['FHIRMESH_TEST_LOGS'] === '1';

  const onLine = (stream: 'stdout' | 'stderr') => (text: string) => {
    if (stream === 'stderr') stderr += text + '\n';
    if (echo) process.stdout.write(`[${name}] ${text}\n`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const line = (typeof parsed === 'object' && parsed !== null ? { ...(parsed as Record<string, unknown>), stream } : { raw: text, stream }) as LogLine;
    logs.push(line);
    for (const waiter of [...waiters]) {
      if (waiter.match(line)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  };
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
        reject(new Error(`no matching ${name} log line within ${timeoutMs} ms; stderr:\n${stderr}`));
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
          timer = setTimeout(() => reject(new Error(`${name} did not exit within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  };

  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<ExitStatus> => {
    if (exitStatus === undefined) child.kill(signal);
    return exited;
  };
  const kill = async (): Promise<void> => {
    await stop('SIGKILL');
  };

  let ready: LogLine;
  try {
    ready = await Promise.race([
      waitForLog(options.ready, options.readyTimeoutMs ?? 20_000),
      exited.then((status): never => {
        throw new Error(`${name} exited with ${status.code ?? status.signal} before it was ready; stderr:\n${stderr}`);
      }),
    ]);
  } catch (err) {
    await kill();
    throw err;
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`spawned ${name} has no pid`);
  return {
    process: { child, pid, logs, stderrText: () => stderr, waitForLog, exited, waitForExit, signal: (signal) => child.kill(signal), stop, kill },
    ready,
  };
}

/** Runs `node script args…` to completion (a refusal, a CLI command); SIGKILL after timeoutMs. */
export async function runToExit(script: string, args: string[], options: { env?: Record<string, string> | undefined; timeoutMs?: number | undefined } = {}): Promise<ExitStatus & { stdout: string; stderr: string }> {
  const child = spawn(NODE_BIN, [script, ...args], { env: childEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
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
