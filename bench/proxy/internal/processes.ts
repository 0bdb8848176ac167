// Every process the benchmark starts goes through here: pinned to a core with taskset, in a
// process group of its own, and killed (group and all) when the run ends, fails or is interrupted.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** The proxy under test gets core 0 to itself; everything else of ours shares core 1. */
export const PROXY_CORE = 0;
export const LOAD_CORE = 1;

// USER_HZ: /proc/<pid>/stat counts CPU in 1/100 s on every Linux architecture Node supports.
const MICROS_PER_TICK = 10_000;

const live = new Set<ChildProcess>();

export interface StartOptions {
  readonly core: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly stdio?: StdioOptions;
  readonly cwd?: string;
}

/** Starts `command` under `taskset -c core`; the child is its own process group. */
export function startPinned(name: string, command: string, args: readonly string[], options: StartOptions): ChildProcess {
  const child = spawn('taskset', ['-c', String(options.core), command, ...args], {
    detached: true,
    stdio: options.stdio ?? ['ignore', 'ignore', 'inherit'],
    env: options.env ?? process.env,
    cwd: options.cwd,
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  child.once('error', (error) => {
    live.delete(child);
    console.error(`${name} (${command}) could not start: ${error.message}`);
  });
  return child;
}

/** `signal` to the child's whole process group, unless it has already exited. */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/** SIGTERM to the child's group, SIGKILL if it has not exited within `graceMs`. */
export async function stopProcess(child: ChildProcess, graceMs = 2_000): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
    signalGroup(child, 'SIGKILL');
    return;
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  signalGroup(child, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
  // Workers a master left behind (nginx) are in the same group.
  signalGroup(child, 'SIGKILL');
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((child) => stopProcess(child, 1_000)));
}

/** Last resort, from process 'exit': no waiting possible there. */
function killAllNow(): void {
  for (const child of live) {
    if (child.pid === undefined) continue;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/**
 * Ctrl-C, SIGTERM, an uncaught failure or a normal end: every child is stopped. `onExit` runs
 * last (removing the temporary directory).
 */
export function cleanUpOnExit(onExit: () => void): void {
  let stopping = false;
  const interrupt = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    console.error(`\n${signal}: stopping every process the benchmark started`);
    void stopAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  process.on('SIGHUP', interrupt);
  process.on('exit', () => {
    killAllNow();
    onExit();
  });
}

/** Pins this process (every thread) to `core`, so the orchestration never runs on the proxy's core. */
export function pinSelf(core: number): void {
  const result = spawnSync('taskset', ['-a', '-p', '-c', String(core), String(process.pid)], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`taskset could not pin the benchmark to core ${core}: ${result.stderr.trim()}`);
}

/** The pid and all its descendants, from /proc (nginx's master and worker, for one). */
export function processTree(rootPid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat === null) continue;
    const siblings = children.get(stat.parentPid) ?? [];
    siblings.push(Number(entry));
    children.set(stat.parentPid, siblings);
  }
  const tree: number[] = [];
  const pending = [rootPid];
  while (pending.length > 0) {
    const pid = pending.pop() as number;
    tree.push(pid);
    pending.push(...(children.get(pid) ?? []));
  }
  return tree;
}

interface Stat {
  readonly parentPid: number;
  readonly cpuMicros: number;
}

function readStat(pid: number): Stat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: fields are counted after its ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
  return { parentPid: Number(fields[1]), cpuMicros: (Number(fields[11]) + Number(fields[12])) * MICROS_PER_TICK };
}

/**
 * utime + stime of the processes, in microseconds, as /proc/<pid>/stat gives them: in 10 ms
 * units, so a 1 s window at 0.05 vCPU is 5 ± 1 units. Kept in the JSON as a cross-check of
 * treeCpuMicros, which the figures use.
 */
export function treeStatCpuMicros(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) total += readStat(pid)?.cpuMicros ?? 0;
  return total;
}

/**
 * Time on CPU of every thread of the processes, in microseconds, from the scheduler's own
 * nanosecond count (/proc/<pid>/task/<tid>/schedstat, first field). Threads that exited during
 * a window are missed; the contenders' threads live as long as they do.
 */
export function treeCpuMicros(pids: readonly number[]): number {
  let nanos = 0;
  for (const pid of pids) {
    let threads: string[];
    try {
      threads = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of threads) {
      try {
        nanos += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ', 1)[0]);
      } catch {
        // The thread ended between the listing and the read.
      }
    }
  }
  return nanos / 1000;
}

/** CPU of children this process has waited for (cutime + cstime): how wrk's and fortio's CPU is known. */
export function reapedChildrenCpuMicros(): number {
  const text = readFileSync('/proc/self/stat', 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) * MICROS_PER_TICK;
}

export interface Memory {
  readonly rssBytes: number;
  /** VmHWM: the resident high-water mark since each process started, summed over the tree. */
  readonly peakRssBytes: number;
}

function statusKilobytes(status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  return match?.[1] === undefined ? 0 : Number(match[1]);
}

export function treeMemory(pids: readonly number[]): Memory {
  let rss = 0;
  let peak = 0;
  for (const pid of pids) {
    let status: string;
    try {
      status = readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      continue;
    }
    rss += statusKilobytes(status, 'VmRSS');
    peak += statusKilobytes(status, 'VmHWM');
  }
  return { rssBytes: rss * 1024, peakRssBytes: peak * 1024 };
}

/** Resolves when the child exits; rejects if it exits with a failure code. */
export function exitOf(child: ChildProcess, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null) {
      if (child.exitCode === 0) resolve();
      else reject(new Error(`${name} exited with code ${child.exitCode}`));
      return;
    }
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${name} exited (code ${code}, signal ${signal})`));
    });
  });
}
