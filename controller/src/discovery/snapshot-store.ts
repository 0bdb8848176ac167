// Holds the translation in force and replaces it when the source changes, batching changes over a
// short window; streams subscribe to it. Nothing is served before the source's first complete read.

import type { Logger } from '../../../runtime/index.ts';
import { translate, type Translation } from '../compile/index.ts';
import type { RouteWatcher } from '../sources/route-watcher.ts';
import { type ChangeRef, type ChangeTracer, NO_TRACING } from '../telemetry/change-tracer.ts';
import type { ControllerMetrics } from '../telemetry/metrics.ts';

export interface SnapshotStoreOptions {
  source: RouteWatcher;
  /** Changes observed within this window after the first one go out together. */
  batchWindowMs: number;
  logger: Logger;
  metrics: ControllerMetrics;
  /** Each compile is a span; pushes and status writes link to it (telemetry/change-tracer.ts). */
  tracer?: ChangeTracer;
  /** Monotonic milliseconds, for convergence timing. */
  nowMs?: () => number;
}

/**
 * Told of each new translation, with when the source first observed the earliest change it contains
 * (undefined: none), and the translation it replaces.
 */
export type TranslationListener = (translation: Translation, changeSeenAtMs: number | undefined, previous: Translation | undefined) => void;

export class SnapshotStore {
  readonly #options: SnapshotStoreOptions;
  readonly #listeners = new Set<TranslationListener>();
  readonly #ready: Promise<void>;
  #markReady: () => void = () => undefined;
  #current: Translation | undefined;
  #sequence = 0;
  #batch: NodeJS.Timeout | undefined;
  #changeSeenAtMs: number | undefined;
  #stopped = false;
  readonly #causes = new WeakMap<Translation, ChangeRef>();

  constructor(options: SnapshotStoreOptions) {
    this.#options = options;
    this.#ready = new Promise((resolve) => (this.#markReady = resolve));
  }

  /** Starts the source; resolves once its first complete read is translated. */
  async start(): Promise<void> {
    // The source's callback only arms a timer: watcher callbacks never block.
    this.#options.source.onChange((observedAtMs) => this.#changed(observedAtMs));
    await this.#options.source.start();
    this.#current = this.#translate('first-read');
    this.#options.logger.log('info', 'routes read', {
      source: this.#options.source.description,
      routes: this.#current.routes.length,
      version: this.#current.version,
    });
    this.#markReady();
  }

  /** Resolves once the source has been read; never rejects (a failed start ends the process). */
  get ready(): Promise<void> {
    return this.#ready;
  }

  get isReady(): boolean {
    return this.#current !== undefined;
  }

  /** The translation in force; undefined until the source's first read. */
  get current(): Translation | undefined {
    return this.#current;
  }

  /** The compile span of a translation, for the pushes and status writes it causes to link to. */
  changeOf(translation: Translation | undefined): ChangeRef | undefined {
    return translation === undefined ? undefined : this.#causes.get(translation);
  }

  /** Listeners run synchronously after each new translation; returns the unsubscribe. */
  subscribe(listener: TranslationListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#batch);
  }

  #changed(observedAtMs: number | undefined): void {
    // Before the first read, start() translates whatever the source holds by then.
    if (this.#current === undefined || this.#stopped) return;
    // The source's observation, not this call: reads, debounce and the scan come before it, and
    // convergence counts them. The earliest of the batch (changes queue behind the first).
    const seenAtMs = observedAtMs ?? this.#nowMs();
    if (this.#changeSeenAtMs === undefined || seenAtMs < this.#changeSeenAtMs) this.#changeSeenAtMs = seenAtMs;
    // A fixed window from the first change's observation, not a debounce: a steady trickle of edits
    // cannot postpone every push forever, and the time the source took to read it (its own debounce)
    // is part of the window rather than added to it.
    this.#batch ??= setTimeout(() => this.#refresh(), Math.max(0, seenAtMs + this.#options.batchWindowMs - this.#nowMs()));
  }

  #refresh(): void {
    this.#batch = undefined;
    const changeSeenAtMs = this.#changeSeenAtMs;
    this.#changeSeenAtMs = undefined;
    let next: Translation;
    try {
      next = this.#translate('change');
    } catch (err) {
      // Compile is meant never to throw; if it does, the table in force stays (fail-static).
      this.#options.metrics.reconcileFailed('translate');
      this.#options.logger.log('error', 'cannot translate routes; keeping the tables in force', { error: String(err) });
      return;
    }
    const previous = this.#current;
    this.#current = next;
    if (changeSeenAtMs !== undefined) this.#options.metrics.tableReplaced((this.#nowMs() - changeSeenAtMs) / 1000);
    this.#options.logger.log('debug', 'routes translated', { sequence: next.sequence, routes: next.routes.length, version: next.version });
    for (const listener of this.#listeners) {
      try {
        listener(next, changeSeenAtMs, previous);
      } catch (err) {
        this.#options.logger.log('error', 'translation listener threw', { error: String(err) });
      }
    }
  }

  #translate(trigger: 'first-read' | 'change'): Translation {
    const sequence = ++this.#sequence;
    const { result, ref } = (this.#options.tracer ?? NO_TRACING).compile(
      { sequence, trigger },
      () => translate(this.#options.source.state(), sequence, this.#current),
      (translation) => ({ routes: translation.routes.length, version: translation.version }),
    );
    if (ref !== undefined) this.#causes.set(result, ref);
    return result;
  }

  #nowMs(): number {
    return (this.#options.nowMs ?? (() => performance.now()))();
  }
}
