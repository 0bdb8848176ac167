// client-node's Watch with what its ListWatch leaves out: bookmarks and a server-side timeout, a
// longer inactivity deadline, every line seen (for the stall watchdog), and no promise left unhandled.

import { Watch, type KubeConfig } from '@kubernetes/client-node';

export interface WatchObserver {
  /** Every line of the stream, BOOKMARK and ERROR included: proof the connection is alive. */
  line(phase: string, object: unknown): void;
  /** A rejection from client-node's own handlers: logged, never left unhandled. */
  internalFailure(err: unknown): void;
  /**
   * False once this watch's informer run is over. ListWatch.stop() does not cancel a reconnect that
   * is waiting out its backoff: client-node 2.0.1's doneHandler awaits the delay and then watches
   * without looking at `stopped`, so a stopped informer would watch the apiserver again.
   */
  live(): boolean;
}

export interface ObservedWatchOptions {
  /**
   * No byte for this long and client-node aborts the watch as a TimeoutError and reconnects at once
   * from its resourceVersion: the cure for half-open connections (kubernetes-client/javascript#596,
   * #958), one request each time. 2.0.0 aborted every watch after 30 s even when healthy (#3020);
   * 2.0.1 (installed) makes the 30 s an inactivity timer (#3022). Bookmarks keep a watch busy only while its collection changes, so
   * a quiet watch is cut at every timeout: 90 s costs a third of the requests of 30 s.
   */
  inactivityTimeoutMs: number;
  /** The apiserver ends each watch after this many seconds (chosen per watch, so watchers spread out). */
  serverTimeoutSeconds: () => number;
}

export class ObservedWatch extends Watch {
  readonly #observer: WatchObserver;
  readonly #serverTimeoutSeconds: () => number;

  constructor(config: KubeConfig, observer: WatchObserver, options: ObservedWatchOptions) {
    super(config);
    this.#observer = observer;
    this.#serverTimeoutSeconds = options.serverTimeoutSeconds;
    // A private field in client-node's typings; a later version that renames it only brings back its default.
    (this as unknown as { requestTimeoutMs: number }).requestTimeoutMs = options.inactivityTimeoutMs;
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const observer = this.#observer;
    if (!observer.live()) {
      const stopped = new AbortController();
      stopped.abort();
      return stopped;
    }
    // ListWatch passes its async watchHandler and doneHandler: a throw in either (a bug, or an event
    // handler of ours that threw) would be an unhandled rejection, fatal on Node >= 15.
    const guardedCallback = (phase: string, object: unknown, raw?: unknown): void => {
      try {
        observer.line(phase, object);
        const result: unknown = (callback as (...args: unknown[]) => unknown)(phase, object, raw);
        if (result instanceof Promise) result.catch((err: unknown) => observer.internalFailure(err));
      } catch (err) {
        observer.internalFailure(err);
      }
    };
    const guardedDone = (err: unknown): void => {
      try {
        const result: unknown = (done)(err);
        if (result instanceof Promise) result.catch((failure: unknown) => observer.internalFailure(failure));
      } catch (failure) {
        observer.internalFailure(failure);
      }
    };
    const params = {
      ...queryParams,
      // ListWatch sends neither: without bookmarks the resourceVersion it resumes from can fall out
      // of the watch cache's window, and the reconnect costs a 410 and a full relist.
      allowWatchBookmarks: true,
      timeoutSeconds: this.#serverTimeoutSeconds(),
    };
    try {
      return await super.watch(path, params, guardedCallback, guardedDone);
    } catch (err) {
      // Thrown before the request went out (credentials could not be loaded, say). ListWatch would
      // reject from inside an earlier watch's done callback, where no one awaits it.
      guardedDone(err);
      return new AbortController();
    }
  }
}
