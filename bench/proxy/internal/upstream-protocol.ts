// The IPC messages between run.ts and upstream.ts, and the parent's handle on the upstream.
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LOAD_CORE, startPinned, stopProcess } from './processes.ts';

export interface UpstreamCounters {
  /** TCP connections accepted since start: a contender without upstream keep-alive opens one per request. */
  readonly connections: number;
  readonly requests: number;
  readonly uploadedBytes: number;
  readonly downloadedBytes: number;
}

export type UpstreamRequest = { readonly type: 'counters'; readonly requestId: number };
export type UpstreamMessage =
  | { readonly type: 'listening'; readonly port: number }
  | { readonly type: 'counters'; readonly requestId: number; readonly counters: UpstreamCounters };

export class Upstream {
  readonly port: number;
  readonly #child: ChildProcess;
  #nextRequestId = 1;

  private constructor(child: ChildProcess, port: number) {
    this.#child = child;
    this.port = port;
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  static async start(): Promise<Upstream> {
    const script = fileURLToPath(new URL('../upstream.ts', import.meta.url));
    const child = startPinned('upstream', process.execPath, [script], { core: LOAD_CORE, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const port = await new Promise<number>((resolve, reject) => {
      child.on('message', (message: UpstreamMessage) => {
        if (message.type === 'listening') resolve(message.port);
      });
      child.once('exit', (code) => reject(new Error(`the upstream exited (code ${code}) before listening; its stderr is above`)));
    });
    return new Upstream(child, port);
  }

  counters(): Promise<UpstreamCounters> {
    const requestId = this.#nextRequestId++;
    return new Promise((resolve) => {
      const onMessage = (message: UpstreamMessage): void => {
        if (message.type !== 'counters' || message.requestId !== requestId) return;
        this.#child.off('message', onMessage);
        resolve(message.counters);
      };
      this.#child.on('message', onMessage);
      const request: UpstreamRequest = { type: 'counters', requestId };
      this.#child.send(request);
    });
  }

  stop(): Promise<void> {
    return stopProcess(this.#child);
  }
}
