// A backend binary run for a test: output kept for failure messages, stopped with SIGTERM (then
// SIGKILL) by the test's afterAll.

import { spawn, type ChildProcess } from 'node:child_process';

export interface ManagedProcess {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

export function startProcess(binary: string, args: string[], options: { cwd?: string } = {}): ManagedProcess {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(options.cwd === undefined ? {} : { cwd: options.cwd }) });
  let text = '';
  const keep = (chunk: Buffer): void => {
    text += chunk.toString();
    if (text.length > 200_000) text = text.slice(-100_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    output: () => text,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `probe` until it returns true; fails with the process output after `timeoutMs`. */
export async function waitUntil(what: string, probe: () => Promise<boolean>, proc: ManagedProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`${what}: the process exited (${proc.child.exitCode}):\n${proc.output().slice(-4000)}`);
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms:\n${proc.output().slice(-4000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** For hooks, where expect.poll is not allowed: polls `probe` until it returns true, else fails naming `what`. */
export async function eventually(what: string, probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
