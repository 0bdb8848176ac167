// Every process the benchmark starts goes through here: in a process group of its own, logging to a
// file in the run's temp dir, and killed (group and all) when the run ends, fails or is interrupted.
// CPU and memory are read from /proc by bench/proxy's helpers.
import { fork, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

import { signalGroup, stopProcess } from '../../proxy/internal/processes.ts';

export { processTree, stopProcess, treeCpuMicros, treeMemory } from '../../proxy/internal/processes.ts';

const live = new Set<ChildProcess>();
const cleanups: (() => Promise<void>)[] = [];

function track(child: ChildProcess, name: string): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  child.on('error', (error: NodeJS.ErrnoException) => {
    // A message sent as a worker is being stopped finds its channel closed: not a failure.
    if (error.code === 'ERR_IPC_CHANNEL_CLOSED') return;
    live.delete(child);
    console.error(`${name}: ${error.message}`);
  });
  return child;
}

/** `command args`, stdout and stderr to `logPath`; its own process group. */
export function startLogged(name: string, command: string, args: readonly string[], logPath: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const fd = openSync(logPath, 'a');
  try {
    return track(spawn(command, args, { detached: true, stdio: ['ignore', fd, fd], env }), name);
  } finally {
    closeSync(fd);
  }
}

/** A Node module of ours with an IPC channel (the simulated-proxy workers). */
export function forkLogged(name: string, modulePath: string, logPath: string): ChildProcess {
  const fd = openSync(logPath, 'a');
  try {
    return track(fork(modulePath, [], { detached: true, stdio: ['ignore', fd, fd, 'ipc'], execPath: process.execPath }), name);
  } finally {
    closeSync(fd);
  }
}

/** Something to undo at the end that is not a child process of ours (the control plane, an upstream). */
export function onCleanup(cleanup: () => Promise<void>): void {
  cleanups.push(cleanup);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((child) => stopProcess(child, 2_000)));
  for (const cleanup of cleanups.splice(0).reverse()) {
    await cleanup().catch((error: unknown) => console.error(`cleanup failed: ${error instanceof Error ? error.message : String(error)}`));
  }
}

/**
 * Ctrl-C, SIGTERM, an uncaught failure or a normal end: every child is stopped. `onExit` runs last
 * (removing the temporary directory); from 'exit' nothing can be awaited, so children get SIGKILL there.
 */
let interrupted = false;

/** A signal is stopping the run: failures from here on are the stopping, not the controller's. */
export function wasInterrupted(): boolean {
  return interrupted;
}

export function cleanUpOnExit(onExit: () => void): void {
  const interrupt = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${signal}: stopping every process the benchmark started`);
    void stopAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  process.on('SIGHUP', interrupt);
  process.on('exit', () => {
    for (const child of live) signalGroup(child, 'SIGKILL');
    onExit();
  });
}
