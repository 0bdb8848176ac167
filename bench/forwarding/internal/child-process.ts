// run.ts's handle on one child: fork it with the same Node flags as every other child,
// wait for a typed IPC message, ask for a stats sample, and stop it.
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildMessage, ParentMessage, ProcessSample, StatsReply } from './messages.ts';

// --expose-gc: idle RSS is sampled after a full GC. DEP0060 is http-proxy calling
// util._extend; it is noted in docs/performance.md rather than printed for every fork.
const CHILD_EXEC_ARGV = ['--expose-gc', '--disable-warning=DEP0060'];

type MessageOfType<T extends ChildMessage['type']> = Extract<ChildMessage, { type: T }>;

export class ChildHandle {
  readonly name: string;
  readonly #child: ChildProcess;
  #exited = false;
  #nextRequestId = 1;

  private constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.#child = child;
    child.once('exit', () => {
      this.#exited = true;
    });
  }

  /** `script` is relative to bench/forwarding/; `nodeOptions` come after the common flags. */
  static start(name: string, script: string, args: readonly string[], nodeOptions: readonly string[]): ChildHandle {
    const path = fileURLToPath(new URL(`../${script}`, import.meta.url));
    const child = fork(path, args, { execArgv: [...CHILD_EXEC_ARGV, ...nodeOptions], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new ChildHandle(name, child);
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  send(message: ParentMessage): void {
    this.#child.send(message);
  }

  /** Resolves with the next message of `type`; rejects if the child exits first. */
  waitFor<T extends ChildMessage['type']>(type: T, matches: (message: MessageOfType<T>) => boolean = () => true): Promise<MessageOfType<T>> {
    return new Promise((resolve, reject) => {
      const onMessage = (message: ChildMessage): void => {
        if (message.type !== type || !matches(message as MessageOfType<T>)) return;
        cleanUp();
        resolve(message as MessageOfType<T>);
      };
      const onExit = (code: number | null, signal: string | null): void => {
        cleanUp();
        reject(new Error(`${this.name} exited (code ${code}, signal ${signal}) before sending '${type}'; its stderr is above`));
      };
      const cleanUp = (): void => {
        this.#child.off('message', onMessage);
        this.#child.off('exit', onExit);
      };
      this.#child.on('message', onMessage);
      this.#child.once('exit', onExit);
    });
  }

  async stats(collectGarbage = false): Promise<ProcessSample> {
    const requestId = this.#nextRequestId++;
    const reply = this.waitFor('stats-reply', (message: StatsReply) => message.requestId === requestId);
    this.send({ type: 'stats', requestId, collectGarbage });
    return (await reply).sample;
  }

  /** Disconnects (children exit on disconnect); kills the child if it has not gone in 2 s. */
  async stop(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    if (this.#child.connected) this.#child.disconnect();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 2_000);
    await exited;
    clearTimeout(timer);
  }
}
