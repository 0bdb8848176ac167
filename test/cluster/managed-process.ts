// A control-plane child process (etcd, kube-apiserver) whose stdout and stderr go to a log file, whose
// tail explains a failed start, and which dies with the test runner instead of outliving it.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

/**
 * Every process still running, killed synchronously when the runner exits without stopping them
 * (a crash, Ctrl-C, process.exit). Installed at import, so it runs before run-dirs.ts removes their dirs.
 */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class ManagedProcess {
  readonly name: string;
  readonly logPath: string;
  readonly #child: ChildProcess;
  readonly #exited: Promise<ExitStatus>;
  #exitStatus: ExitStatus | undefined;

  private constructor(name: string, logPath: string, child: ChildProcess) {
    this.name = name;
    this.logPath = logPath;
    this.#child = child;
    live.add(child);
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(child);
        this.#exitStatus = { code, signal };
        resolve(this.#exitStatus);
      });
      // A spawn failure (ENOENT, EACCES) emits 'error' and no 'exit'.
      child.once('error', (err) => {
        live.delete(child);
        fs.appendFileSync(logPath, `\n[fhirmesh] could not start ${name}: ${err.message}\n`);
        this.#exitStatus = { code: -1, signal: null };
        resolve(this.#exitStatus);
      });
    });
  }

  /** Starts `binary args…`, appending its output to `logPath` (a restart keeps the earlier run's lines). */
  static start(name: string, binary: string, args: readonly string[], logPath: string): ManagedProcess {
    fs.appendFileSync(logPath, `[fhirmesh] ${new Date().toISOString()} starting ${binary} ${args.join(' ')}\n`);
    const fd = fs.openSync(logPath, 'a');
    try {
      const child = spawn(binary, args, { stdio: ['ignore', fd, fd] });
      return new ManagedProcess(name, logPath, child);
    } finally {
      fs.closeSync(fd); // the child holds its own copy
    }
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Set once the process has exited. */
  get exitStatus(): ExitStatus | undefined {
    return this.#exitStatus;
  }

  get exited(): Promise<ExitStatus> {
    return this.#exited;
  }

  /** Sends `signal`, then SIGKILL if it is still running after `graceMs`; resolves once it has exited. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<ExitStatus> {
    if (this.#exitStatus) return this.#exitStatus;
    this.#child.kill(signal);
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
    try {
      return await this.#exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The last `lines` lines of the log, for error messages. */
  tail(lines = 40): string {
    let text: string;
    try {
      text = fs.readFileSync(this.logPath, 'utf8');
    } catch {
      return `(no log at ${this.logPath})`;
    }
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  }

  /** One line for an error message: how it exited, or that it is still running. */
  describeState(): string {
    const status = this.#exitStatus;
    if (!status) return `${this.name} (pid ${this.pid ?? '?'}) is still running`;
    return `${this.name} exited with ${status.signal ? `signal ${status.signal}` : `code ${status.code}`}`;
  }
}
