// fhirmesh-controller as the image runs it (compiled dist/), on ephemeral loopback ports read back
// from its "controller listening" line; its /metrics read as Prometheus text.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startLogged, stopProcess } from './processes.ts';

export interface RunningController {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly grpcAddress: string;
  readonly adminUrl: string;
  /** Spawn to /readyz 200 (its sources read once, the first translation made). */
  readonly readyMs: number;
  readonly logPath: string;
  stop(): Promise<void>;
}

function logTail(logPath: string): string {
  try {
    return readFileSync(logPath, 'utf8').trim().split('\n').slice(-15).join('\n');
  } catch {
    return '(no log)';
  }
}

/** The first JSON line of the log whose msg is `msg`, once it is there. */
export function logLine(logPath: string, msg: string): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = readFileSync(logPath, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    if (!line.includes(msg)) continue;
    try {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if (parsed['msg'] === msg) return parsed;
    } catch {
      // Not a JSON line.
    }
  }
  return undefined;
}

export function logTailOf(logPath: string): string {
  return logTail(logPath);
}

function listeningLine(logPath: string): { grpcAddress: string; adminUrl: string } | undefined {
  const line = logLine(logPath, 'controller listening');
  if (typeof line?.['grpcAddress'] !== 'string' || typeof line['adminUrl'] !== 'string') return undefined;
  return { grpcAddress: line['grpcAddress'], adminUrl: line['adminUrl'] };
}

export async function startController(repoRoot: string, workDir: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<RunningController> {
  const logPath = join(workDir, 'controller.log');
  const startedAt = performance.now();
  const child = startLogged(
    'fhirmesh-controller',
    process.execPath,
    [join(repoRoot, 'dist/controller/src/main.js'), '--grpc-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--log-level', 'info', ...args],
    logPath,
    { ...process.env, ...env },
  );
  const fail = (why: string): Error => new Error(`fhirmesh-controller ${why}; the end of ${logPath}:\n${logTail(logPath)}`);
  let listening: { grpcAddress: string; adminUrl: string } | undefined;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw fail(`exited (code ${child.exitCode}, signal ${child.signalCode}) before it was ready`);
    if (performance.now() - startedAt > timeoutMs) throw fail(`was not ready within ${timeoutMs / 1000} s`);
    listening ??= listeningLine(logPath);
    if (listening !== undefined) {
      const ready = await fetch(`${listening.adminUrl}/readyz`).then(
        (response) => response.status === 200,
        () => false,
      );
      if (ready) break;
    }
    await sleep(50);
  }
  return {
    child,
    pid: child.pid as number,
    grpcAddress: listening.grpcAddress,
    adminUrl: listening.adminUrl,
    readyMs: performance.now() - startedAt,
    logPath,
    stop: () => stopProcess(child, 5_000),
  };
}

/** The controller's /metrics, summed per metric name over the label sets that include `labels`. */
export class MetricsText {
  readonly #rows: { name: string; labels: string; value: number }[];

  constructor(text: string) {
    this.#rows = [];
    for (const row of text.split('\n')) {
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)/.exec(row);
      if (match === null) continue;
      this.#rows.push({ name: match[1] as string, labels: match[2] ?? '', value: Number(match[3]) });
    }
  }

  /** undefined when no sample matches, so a renamed metric cannot pass as 0. */
  value(name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
    let sum: number | undefined;
    for (const row of this.#rows) {
      if (row.name !== name) continue;
      if (Object.entries(labels).every(([key, value]) => row.labels.includes(`${key}="${value}"`))) sum = (sum ?? 0) + row.value;
    }
    return sum;
  }
}

export async function scrape(adminUrl: string): Promise<MetricsText> {
  return new MetricsText(await (await fetch(`${adminUrl}/metrics`)).text());
}
