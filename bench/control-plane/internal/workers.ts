// The orchestrator's side of the simulated proxies: a few worker processes (proxy-worker.ts), each
// holding a share of the streams; every question goes to all of them and their answers are merged.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { forkLogged, stopProcess } from './processes.ts';
import type { ControllerEndpoint } from './simulated-proxy.ts';
import type { ProxySpec, WaitResult, WorkerReply, WorkerRequest, WorkerStats } from './worker-protocol.ts';

const WORKER_MODULE = fileURLToPath(new URL('./proxy-worker.ts', import.meta.url));

type RequestBody = WorkerRequest extends infer R ? (R extends WorkerRequest ? Omit<R, 'id'> : never) : never;

class Worker {
  readonly child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  #next = 1;
  readonly ready: Promise<void>;

  constructor(child: ChildProcess, name: string) {
    this.child = child;
    this.ready = new Promise((resolve, reject) => {
      this.#pending.set(0, { resolve: () => resolve(), reject });
    });
    child.on('message', (reply: WorkerReply) => {
      const waiting = this.#pending.get(reply.id);
      if (waiting === undefined) return;
      this.#pending.delete(reply.id);
      if ('error' in reply) waiting.reject(new Error(`${name}: ${reply.error}`));
      else waiting.resolve(reply.result);
    });
    child.once('exit', (code, signal) => {
      for (const waiting of this.#pending.values()) waiting.reject(new Error(`${name} exited (code ${code}, signal ${signal}) with a question unanswered`));
      this.#pending.clear();
    });
  }

  call<T>(request: RequestBody): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.send({ ...request, id });
    });
  }
}

function mergeStats(all: readonly WorkerStats[]): WorkerStats {
  const ends: Record<string, number> = {};
  const endDetails: Record<string, string> = {};
  const snapshotRoutes: Record<string, number> = {};
  for (const stats of all) {
    for (const [code, count] of Object.entries(stats.ends)) ends[code] = (ends[code] ?? 0) + count;
    for (const [code, details] of Object.entries(stats.endDetails)) endDetails[code] ??= details;
    for (const [namespace, routes] of Object.entries(stats.snapshotRoutes)) snapshotRoutes[namespace] = Math.max(snapshotRoutes[namespace] ?? 0, routes);
  }
  const sum = (pick: (stats: WorkerStats) => number): number => all.reduce((total, stats) => total + pick(stats), 0);
  return { loopDelayMaxMs: Math.max(0, ...all.map((stats) => stats.loopDelayMaxMs)), proxies: sum((s) => s.proxies), connected: sum((s) => s.connected), nacks: sum((s) => s.nacks), responses: sum((s) => s.responses), ends, endDetails, snapshotRoutes, rssBytes: sum((s) => s.rssBytes) };
}

function mergeWaits(all: readonly WaitResult[]): WaitResult {
  return {
    complete: all.every((wait) => wait.complete),
    proxies: all.reduce((total, wait) => total + wait.proxies, 0),
    done: all.reduce((total, wait) => total + wait.done, 0),
    lastAtMs: Math.max(0, ...all.map((wait) => wait.lastAtMs)),
    outOfScopeResponses: all.reduce((total, wait) => total + wait.outOfScopeResponses, 0),
    stats: mergeStats(all.map((wait) => wait.stats)),
  };
}

export class ProxyWorkers {
  readonly #workers: Worker[];

  private constructor(workers: Worker[]) {
    this.#workers = workers;
  }

  static async start(count: number, workDir: string): Promise<ProxyWorkers> {
    const workers = Array.from({ length: count }, (_, index) => new Worker(forkLogged(`proxy worker ${index}`, WORKER_MODULE, join(workDir, `proxy-worker-${index}.log`)), `proxy worker ${index}`));
    await Promise.all(workers.map((worker) => worker.ready));
    return new ProxyWorkers(workers);
  }

  pids(): number[] {
    return this.#workers.map((worker) => worker.child.pid as number);
  }

  /** Opens every proxy at once (dealt round-robin over the workers); resolves with the earliest open time. */
  async open(endpoint: ControllerEndpoint, proxies: readonly ProxySpec[], tokens: Readonly<Record<string, string>>): Promise<number> {
    const shares = this.#workers.map((_, index) => proxies.filter((__, proxyIndex) => proxyIndex % this.#workers.length === index));
    const opened = await Promise.all(this.#workers.map((worker, index) => worker.call<{ openedAtMs: number }>({ op: 'open', endpoint, proxies: shares[index] ?? [], tokens })));
    return Math.min(...opened.map((result) => result.openedAtMs));
  }

  async waitFirstTables(timeoutMs: number): Promise<WaitResult> {
    return mergeWaits(await Promise.all(this.#workers.map((worker) => worker.call<WaitResult>({ op: 'waitFirstTables', timeoutMs }))));
  }

  /** Arms the wait: from now on, proxies of each namespace named wait for its routes with those backend URLs. */
  async watch(expected: readonly (readonly [namespace: string, destinationId: string, baseUrl: string])[]): Promise<void> {
    await Promise.all(this.#workers.map((worker) => worker.call({ op: 'watch', expected })));
  }

  async waitWatched(timeoutMs: number): Promise<WaitResult> {
    return mergeWaits(await Promise.all(this.#workers.map((worker) => worker.call<WaitResult>({ op: 'waitWatched', timeoutMs }))));
  }

  async stats(): Promise<WorkerStats> {
    return mergeStats(await Promise.all(this.#workers.map((worker) => worker.call<WorkerStats>({ op: 'stats' }))));
  }

  /** Closes every stream (the proxies are dropped); resolves with their stats just before. */
  async closeAll(): Promise<WorkerStats> {
    return mergeStats(await Promise.all(this.#workers.map((worker) => worker.call<WorkerStats>({ op: 'closeAll' }))));
  }

  async stop(): Promise<void> {
    await Promise.all(this.#workers.map((worker) => stopProcess(worker.child)));
  }
}
