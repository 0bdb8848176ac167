// Standalone mode's RouteWatcher: every *.yaml / *.yml file in one directory, watched by event and read
// only when it changed. A file that does not parse keeps the routes it had (fail-static per file); PEM
// files are read here, not in compile. A periodic stat of every file backs up watches that miss events.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { formatManifestProblem, parseRouteManifests, referencesOf, type FhirRoute, type RefResolver } from '../../../api/index.ts';
import { canonicalJson, type Logger } from '../../../runtime/index.ts';
import { ControllerError } from '../errors.ts';
import { NODE_DIRECTORY_FILES, type DirectoryFiles, type FileProbe } from './internal/directory-files.ts';
import { notifyListeners, type ChangeListener, type RouteWatcher, type SourceState } from './route-watcher.ts';
import { SortedKeys } from './sorted-keys.ts';

export interface DirectorySourceOptions {
  dir: string;
  /** Only routes of this namespace are read (--namespace); all when absent. */
  namespace?: string;
  logger: Logger;
  /** Called once per refused file content (for the reconcile-errors metric). */
  onRefused?: () => void;
  /**
   * A file is read this long after its first watch event (editors write in several steps); later
   * events of the same burst join that read, so a steady stream of them cannot postpone it. Default
   * 25 ms: a save's writes come within microseconds, and the snapshot store's batch window, which
   * counts from the same observation, absorbs it.
   */
  debounceMs?: number;
  /**
   * Backstop scan interval, for file systems whose watch misses events (NFS, some mounts): every
   * file and PEM is stat'd and only those whose stat changed are read. 0: none. Default 10 s.
   */
  pollMs?: number;
  now?: () => Date;
  /** Monotonic milliseconds (performance.now()), for when a change was observed. */
  nowMs?: () => number;
  /** The file system; tests count reads through it. */
  files?: DirectoryFiles;
}

export const DEFAULT_DIRECTORY_POLL_MS = 10_000;

/** One route of a file as parsed. */
interface ParsedRoute {
  route: FhirRoute;
  /** Of the whole object, computed only when a re-read needs to tell whether it changed. */
  contentHash?: string;
}

/** What a file gave the last time it parsed. */
interface GoodRead {
  textHash: string;
  /** By key, in file order; the first route of a key in the file (a second one is ignored). */
  routes: Map<string, ParsedRoute>;
  /** Absolute paths of the PEM files its routes name. */
  pemPaths: string[];
}

interface FileEntry {
  /** The stat taken before the last read; undefined: read it at the next scan whatever its stat. */
  probe?: FileProbe;
  good?: GoodRead;
  /** The content last refused and why, so a bad file is logged once, not on every scan. */
  refused?: { textHash: string; problems: string[] };
}

interface PemEntry {
  probe: FileProbe;
  /** undefined: cannot be read (missing); compile says so in the route's status. */
  content: string | undefined;
  /** Routes files naming it. */
  users: Set<string>;
}

/** The apiserver's bookkeeping, imitated: generation counts spec changes, creation time is first sight. */
interface Identity {
  spec: FhirRoute['spec'];
  specHash?: string;
  generation: number;
  creationTimestamp: string;
}

/** The object served for a key: the raw route of the file that defines it first, with its identity. */
interface Served {
  raw: FhirRoute;
  route: FhirRoute;
}

/** The probe of a PEM named but not read yet. */
const UNREAD: FileProbe = { stamp: 'unread', missing: true, racy: true };

/** Reads of a large scan between yields to the event loop, so streams are served while 10,000 files are read. */
const READS_PER_TURN = 64;

export class DirectorySource implements RouteWatcher {
  readonly description: string;
  readonly #dir: string;
  readonly #options: DirectorySourceOptions;
  readonly #files: DirectoryFiles;
  readonly #debounceMs: number;
  /** Every routes file seen, and its names in name order (the order routes are served in). */
  readonly #entries = new Map<string, FileEntry>();
  readonly #order = new SortedKeys();
  /** The files defining each route key, in name order: the first one's route is served. */
  readonly #definers = new Map<string, SortedKeys>();
  readonly #served = new Map<string, Served>();
  readonly #identities = new Map<string, Identity>();
  readonly #pems = new Map<string, PemEntry>();
  readonly #listeners: ChangeListener[] = [];
  #state: SourceState;
  // What changed since the last publish, and when the earliest of it was observed.
  readonly #touched = new Set<string>();
  #pemsChanged = false;
  #observedAtMs: number | undefined;
  // Watch events waiting for their read, by file name, with their first observation (insertion
  // order is observation order); a full scan is wanted when the directory itself changed shape.
  readonly #pending = new Map<string, number>();
  #pendingFullScanAtMs: number | undefined;
  #pendingPemsAtMs: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #draining = false;
  #pollQueued = false;
  /** Scans and reads run one at a time, in order. */
  #tail: Promise<void> = Promise.resolve();
  #watcher: fs.FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #started = false;
  #stopped = false;

  constructor(options: DirectorySourceOptions) {
    this.#dir = path.resolve(options.dir);
    this.#options = options;
    this.#files = options.files ?? NODE_DIRECTORY_FILES;
    this.#debounceMs = options.debounceMs ?? 25;
    this.description = `directory ${this.#dir}`;
    this.#state = { routes: [], refs: refsOver(this.#dir, new Map()) };
  }

  async start(): Promise<void> {
    let stat: fs.Stats;
    try {
      stat = await fs.promises.stat(this.#dir);
    } catch (err) {
      throw new ControllerError('FHIRMESH_SOURCE_UNREADABLE', `--routes-dir ${this.#dir}: cannot read it (${codeOf(err)}): create the directory or correct the path`, { cause: err });
    }
    if (!stat.isDirectory()) {
      throw new ControllerError('FHIRMESH_SOURCE_UNREADABLE', `--routes-dir ${this.#dir} is not a directory: give the directory that holds the FhirRoute YAML files`);
    }
    // Watching before the first read: an edit during a long first read is an event, not a miss.
    // The directory, not each file: editors and ConfigMap mounts replace files by rename, which a
    // watch on the old inode never sees.
    try {
      this.#watcher = fs.watch(this.#dir, { persistent: false }, (_event, name) => this.#observed(name));
      this.#watcher.on('error', (err) => this.#options.logger.log('warn', 'directory watch failed; relying on the poll', { dir: this.#dir, error: String(err) }));
    } catch (err) {
      this.#options.logger.log('warn', 'cannot watch the routes directory; relying on the poll', { dir: this.#dir, error: String(err) });
    }
    await this.rescan();
    this.#started = true;
    const pollMs = this.#options.pollMs ?? DEFAULT_DIRECTORY_POLL_MS;
    if (pollMs > 0) {
      this.#poll = setInterval(() => this.#pollNow(), pollMs);
      this.#poll.unref();
    }
  }

  state(): SourceState {
    return this.#state;
  }

  onChange(listener: ChangeListener): void {
    this.#listeners.push(listener);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#watcher?.close();
    clearInterval(this.#poll);
    clearTimeout(this.#timer);
    await this.#tail;
  }

  /** Files whose current content is refused, with the problems; their previous routes stay in force. */
  refusedFiles(): { file: string; problems: string[] }[] {
    return [...this.#order].flatMap((file) => {
      const refused = this.#entries.get(file)?.refused;
      return refused === undefined ? [] : [{ file, problems: refused.problems }];
    });
  }

  /**
   * Scans the directory now: every file and named PEM stat'd, those whose stat changed (or that
   * are racy) read. Scans and reads never overlap: this one runs after any in progress.
   */
  rescan(): Promise<void> {
    return this.#serially(() => this.#fullScan(undefined));
  }

  #serially(task: () => Promise<void>): Promise<void> {
    const run = this.#tail.then(async () => {
      if (this.#stopped) return;
      await task();
      if (!this.#stopped) this.#publish();
    });
    this.#tail = run.catch((err: unknown) => {
      this.#options.onRefused?.();
      this.#options.logger.log('error', 'cannot read the routes directory; keeping the routes in force', { dir: this.#dir, error: String(err) });
    });
    return run;
  }

  #pollNow(): void {
    if (this.#pollQueued || this.#stopped) return;
    this.#pollQueued = true;
    void this.#serially(async () => {
      this.#pollQueued = false;
      await this.#fullScan(undefined);
    }).catch(() => undefined);
  }

  /** A watch event: only records what to read and arms the timer (watch callbacks never block). */
  #observed(name: string | null): void {
    if (this.#stopped) return;
    const atMs = this.#nowMs();
    if (name === null || name.startsWith('..')) {
      // No name (the platform gave none), or a ConfigMap mount's `..data` link swapped: every
      // file may have changed under its unchanged link, so stat them all.
      this.#pendingFullScanAtMs ??= atMs;
    } else if (isRoutesFileName(name)) {
      if (!this.#pending.has(name)) this.#pending.set(name, atMs);
    } else if (!name.startsWith('.') && this.#namesPems(path.join(this.#dir, name))) {
      // A PEM in the directory, or a directory of them replaced. (Other dot files are editor
      // temporaries: the rename that ends a save is an event on the routes file itself.)
      this.#pendingPemsAtMs ??= atMs;
    } else {
      return;
    }
    this.#arm();
  }

  #namesPems(target: string): boolean {
    if (this.#pems.has(target)) return true;
    const prefix = target + path.sep;
    for (const pemPath of this.#pems.keys()) if (pemPath.startsWith(prefix)) return true;
    return false;
  }

  /** The timer for the earliest pending event's read: at most debounceMs after it was observed. */
  #arm(): void {
    if (this.#timer !== undefined || this.#draining || this.#stopped) return;
    const first = this.#earliestPendingMs();
    if (first === undefined) return;
    const delayMs = Math.max(0, first + this.#debounceMs - this.#nowMs());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#drain();
    }, delayMs);
  }

  #earliestPendingMs(): number | undefined {
    let first: number | undefined;
    for (const atMs of [this.#pendingFullScanAtMs, this.#pendingPemsAtMs, this.#pending.values().next().value]) {
      if (atMs !== undefined && (first === undefined || atMs < first)) first = atMs;
    }
    return first;
  }

  /** Reads what is due, publishes, and re-arms for what is not due yet. */
  #drain(): void {
    this.#draining = true;
    void this.#serially(async () => {
      const dueBeforeMs = this.#nowMs() - this.#debounceMs + 1;
      const fullScanAtMs = this.#pendingFullScanAtMs;
      if (fullScanAtMs !== undefined && fullScanAtMs < dueBeforeMs) {
        this.#pendingFullScanAtMs = undefined;
        this.#pendingPemsAtMs = undefined;
        this.#pending.clear();
        await this.#fullScan(fullScanAtMs);
        return;
      }
      const due: [string, number][] = [];
      for (const [name, atMs] of this.#pending) {
        if (atMs >= dueBeforeMs) break;
        due.push([name, atMs]);
      }
      for (const [name] of due) this.#pending.delete(name);
      if (due.length > 0) {
        const probes = await this.#files.probe(due.map(([name]) => this.#pathOf(name)));
        for (let i = 0; i < due.length; i++) {
          const [name, atMs] = due[i] as [string, number];
          const probe = probes[i] as FileProbe;
          if (probe.missing) this.#removeFile(name, atMs);
          else this.#readFile(name, probe, atMs);
          if ((i + 1) % READS_PER_TURN === 0) await yieldTurn();
        }
      }
      const pemsAtMs = this.#pendingPemsAtMs;
      if (pemsAtMs !== undefined && pemsAtMs < dueBeforeMs) {
        this.#pendingPemsAtMs = undefined;
        await this.#checkPems(pemsAtMs);
      } else {
        await this.#checkPems(undefined, 'unread');
      }
    })
      .catch(() => undefined)
      .finally(() => {
        this.#draining = false;
        this.#arm();
      });
  }

  /**
   * Lists the directory and stats every routes file and PEM: a file whose stat is unchanged (and not
   * racy) is not read. `observedAtMs`: the event that asked for the scan; else each change counts
   * from when this scan noticed it.
   */
  async #fullScan(observedAtMs: number | undefined): Promise<void> {
    const names = (await this.#files.list(this.#dir))
      // Dot files are editor temporaries and the ..data links of ConfigMap mounts.
      .filter((entry) => entry.fileLike && isRoutesFileName(entry.name))
      .map((entry) => entry.name);
    // New files in name order, so each lands at the end of #order (the first read of 10,000 files).
    if (names.some((name) => !this.#entries.has(name))) names.sort();
    const present = new Set(names);
    for (const name of [...this.#entries.keys()]) {
      if (!present.has(name)) this.#removeFile(name, observedAtMs ?? this.#nowMs());
    }
    const probes = await this.#files.probe(names.map((name) => this.#pathOf(name)));
    const detectedAtMs = observedAtMs ?? this.#nowMs();
    let reads = 0;
    for (let i = 0; i < names.length; i++) {
      const name = names[i] as string;
      const probe = probes[i] as FileProbe;
      const known = this.#entries.get(name)?.probe;
      if (known !== undefined && known.stamp === probe.stamp && !known.racy) continue;
      if (probe.missing) {
        this.#removeFile(name, detectedAtMs);
        continue;
      }
      this.#readFile(name, probe, detectedAtMs);
      if (++reads % READS_PER_TURN === 0) await yieldTurn();
    }
    await this.#checkPems(observedAtMs);
  }

  /** Reads one file whose stat was just taken; records what changed for the next publish. */
  #readFile(name: string, probe: FileProbe, observedAtMs: number): void {
    const file = this.#pathOf(name);
    let entry = this.#entries.get(name);
    if (entry === undefined) {
      entry = {};
      this.#entries.set(name, entry);
      this.#order.add(name);
    }
    let text: string;
    try {
      text = this.#files.read(file);
    } catch (err) {
      // Gone between stat and read: its removal is an event of its own, or the next scan's.
      // Unreadable: keep what it had.
      entry.probe = undefined;
      const marker = `unreadable:${codeOf(err)}`;
      if (codeOf(err) !== 'ENOENT' && entry.refused?.textHash !== marker) this.#refuse(name, entry, marker, [`cannot read it (${codeOf(err)})`]);
      return;
    }
    entry.probe = probe;
    const textHash = sha256(text);
    if (entry.good?.textHash === textHash) {
      if (entry.refused !== undefined) {
        entry.refused = undefined;
        this.#options.logger.log('info', 'routes file is back to the content in force', { file: name });
      }
      return;
    }
    if (entry.refused?.textHash === textHash) return;

    const parsed = parseRouteManifests(text, name);
    if (parsed.problems.length > 0) {
      this.#refuse(name, entry, textHash, parsed.problems.map(formatManifestProblem));
      return;
    }
    const previous = entry.good?.routes;
    const routes = new Map<string, ParsedRoute>();
    for (const route of parsed.routes) {
      const namespace = route.metadata.namespace ?? '';
      const key = `${namespace}/${route.metadata.name}`;
      if (this.#options.namespace !== undefined && namespace !== this.#options.namespace) {
        this.#options.logger.log('warn', 'route outside --namespace ignored', { file: name, route: key, namespace: this.#options.namespace });
        continue;
      }
      if (routes.has(key)) {
        this.#options.logger.log('warn', 'route defined twice in one file; the first is used', { route: key, file: name });
        continue;
      }
      // Unchanged in an edited file: the object it had, so compile's caches still hold for it.
      const before = previous?.get(key);
      if (before !== undefined) {
        const contentHash = sha256(canonicalJson(route));
        before.contentHash ??= sha256(canonicalJson(before.route));
        routes.set(key, before.contentHash === contentHash ? before : { route, contentHash });
      } else {
        routes.set(key, { route });
      }
    }
    const pemPaths = [...new Set([...routes.values()].flatMap(({ route }) => this.#pemPathsOf(route)))].sort();
    this.#replaceGood(name, entry, { textHash, routes, pemPaths });
    entry.refused = undefined;
    this.#noteObserved(observedAtMs);
    // One line per file on changes; the first read of 10,000 files is the store's one 'routes read' line.
    this.#options.logger.log(this.#started ? 'info' : 'debug', 'routes file read', { file: name, routes: routes.size });
  }

  #removeFile(name: string, observedAtMs: number): void {
    const entry = this.#entries.get(name);
    if (entry === undefined) return;
    this.#replaceGood(name, entry, undefined);
    this.#entries.delete(name);
    this.#order.delete(name);
    this.#noteObserved(observedAtMs);
    this.#options.logger.log('info', 'routes file removed', { file: name });
  }

  /** A file's routes and PEMs become `good`: the keys it gains, loses or changes are touched. */
  #replaceGood(name: string, entry: FileEntry, good: GoodRead | undefined): void {
    const before = entry.good;
    entry.good = good;
    for (const [key, route] of before?.routes ?? []) {
      const after = good?.routes.get(key);
      if (after === undefined) {
        this.#undefine(key, name);
        this.#touched.add(key);
      } else if (after.route !== route.route) {
        this.#touched.add(key);
      }
    }
    for (const key of good?.routes.keys() ?? []) {
      if (before?.routes.has(key) === true) continue;
      this.#definersOf(key).add(name);
      this.#touched.add(key);
    }
    const pemsBefore = new Set(before?.pemPaths ?? []);
    for (const pemPath of good?.pemPaths ?? []) {
      if (pemsBefore.delete(pemPath)) continue;
      const pem = this.#pems.get(pemPath);
      if (pem !== undefined) {
        pem.users.add(name);
      } else {
        // Read by the #checkPems that ends every scan and every batch of reads.
        this.#pems.set(pemPath, { probe: UNREAD, content: undefined, users: new Set([name]) });
        this.#pemsChanged = true;
      }
    }
    for (const pemPath of pemsBefore) {
      const pem = this.#pems.get(pemPath);
      pem?.users.delete(name);
      if (pem !== undefined && pem.users.size === 0) {
        this.#pems.delete(pemPath);
        this.#pemsChanged = true;
      }
    }
  }

  #definersOf(key: string): SortedKeys {
    let definers = this.#definers.get(key);
    if (definers === undefined) {
      definers = new SortedKeys();
      this.#definers.set(key, definers);
    }
    return definers;
  }

  #undefine(key: string, name: string): void {
    const definers = this.#definers.get(key);
    if (definers === undefined) return;
    definers.delete(name);
    if (definers.size === 0) this.#definers.delete(key);
  }

  /** Stats every PEM named (one stat each: cheap), or only those never read, and reads those whose stat changed. */
  async #checkPems(observedAtMs: number | undefined, only: 'all' | 'unread' = 'all'): Promise<void> {
    if (this.#pems.size === 0) return;
    const paths = only === 'all' ? [...this.#pems.keys()] : [...this.#pems].filter(([, pem]) => pem.probe === UNREAD).map(([pemPath]) => pemPath);
    if (paths.length === 0) return;
    const probes = await this.#files.probe(paths);
    const detectedAtMs = observedAtMs ?? this.#nowMs();
    for (let i = 0; i < paths.length; i++) {
      const pemPath = paths[i] as string;
      const probe = probes[i] as FileProbe;
      const pem = this.#pems.get(pemPath);
      if (pem === undefined || (pem.probe.stamp === probe.stamp && !pem.probe.racy)) continue;
      const firstRead = pem.probe === UNREAD;
      pem.probe = probe;
      const content = this.#readPem(pemPath, probe);
      if (content === pem.content) continue;
      pem.content = content;
      this.#pemsChanged = true;
      if (firstRead) continue;
      this.#noteObserved(detectedAtMs);
      this.#options.logger.log('info', 'TLS file named by routes files changed', { file: pemPath, routesFiles: pem.users.size });
      // Same spec, another compiled route: new objects, so compile caching by identity compiles them again.
      for (const user of pem.users) {
        for (const [key, parsed] of this.#entries.get(user)?.good?.routes ?? []) {
          if (!this.#pemPathsOf(parsed.route).includes(pemPath)) continue;
          this.#entries.get(user)?.good?.routes.set(key, { ...parsed, route: { ...parsed.route } });
          this.#touched.add(key);
        }
      }
    }
  }

  #pemPathsOf(route: FhirRoute): string[] {
    return referencesOf(route).files.map((p) => path.resolve(this.#dir, p));
  }

  #readPem(pemPath: string, probe: FileProbe): string | undefined {
    if (probe.missing) return undefined;
    try {
      return this.#files.read(pemPath);
    } catch {
      return undefined;
    }
  }

  #refuse(name: string, entry: FileEntry, textHash: string, problems: string[]): void {
    entry.refused = { textHash, problems };
    this.#options.onRefused?.();
    this.#options.logger.log('error', 'routes file refused; its previous routes stay in force', {
      file: name,
      keptRoutes: entry.good?.routes.size ?? 0,
      problems,
    });
  }

  #noteObserved(atMs: number): void {
    if (this.#observedAtMs === undefined || atMs < this.#observedAtMs) this.#observedAtMs = atMs;
  }

  /**
   * The new state, when anything changed: touched keys get their served object again (the others
   * keep theirs), the route list is rebuilt from those objects in file-name order, and listeners are
   * told when the earliest change was observed.
   */
  #publish(): void {
    if (this.#touched.size === 0 && !this.#pemsChanged) {
      this.#observedAtMs = undefined;
      return;
    }
    const now = (this.#options.now ?? (() => new Date()))();
    let changed = this.#pemsChanged;
    for (const key of this.#touched) if (this.#serve(key, now)) changed = true;
    this.#touched.clear();
    const observedAtMs = this.#observedAtMs ?? this.#nowMs();
    this.#observedAtMs = undefined;
    if (!changed) return;
    const routes: FhirRoute[] = [];
    for (const name of this.#order) {
      for (const [key, { route }] of this.#entries.get(name)?.good?.routes ?? []) {
        const served = this.#served.get(key);
        if (served?.raw === route) routes.push(served.route);
      }
    }
    let refs = this.#state.refs;
    if (this.#pemsChanged) {
      // A new resolver over a copy: a state handed out never changes under its reader.
      refs = refsOver(this.#dir, new Map([...this.#pems].map(([pemPath, pem]) => [pemPath, pem.content])));
      this.#pemsChanged = false;
    }
    this.#state = { routes, refs };
    // The first read is not a change: start() resolving says it happened.
    if (!this.#started) return;
    notifyListeners(this.#listeners, observedAtMs, this.#options.logger);
  }

  /** Settles which route is served for a key; true when the served object changed. */
  #serve(key: string, now: Date): boolean {
    const definers = this.#definers.get(key);
    const first = definers?.first;
    const raw = first === undefined ? undefined : this.#entries.get(first)?.good?.routes.get(key)?.route;
    const served = this.#served.get(key);
    if (raw === undefined) {
      this.#served.delete(key);
      this.#identities.delete(key);
      return served !== undefined;
    }
    if (definers !== undefined && definers.size > 1) {
      // As a second `kubectl apply` of one name would replace, not add: one object per name.
      for (const ignored of definers.rest()) {
        this.#options.logger.log('warn', 'route defined in two files; the first file (by name) is used', { route: key, used: first, ignored });
      }
    }
    if (served?.raw === raw) return false;
    this.#served.set(key, { raw, route: this.#withIdentity(key, raw, now) });
    return true;
  }

  /**
   * A copy with generation and creationTimestamp as the apiserver would set them: generation counts
   * spec changes, so status can tell which edit proxies run; first sight stands for creation, so a
   * route added later cannot take a destination from an older one by sorting first by name.
   */
  #withIdentity(key: string, route: FhirRoute, now: Date): FhirRoute {
    const known = this.#identities.get(key);
    let identity: Identity;
    if (known === undefined) {
      identity = { spec: route.spec, generation: 1, creationTimestamp: route.metadata.creationTimestamp ?? now.toISOString() };
    } else if (known.spec === route.spec) {
      identity = known;
    } else {
      // Hashed only now, for the routes that changed: the first read hashes nothing.
      const specHash = sha256(canonicalJson(route.spec));
      known.specHash ??= sha256(canonicalJson(known.spec));
      identity = { spec: route.spec, specHash, generation: known.specHash === specHash ? known.generation : known.generation + 1, creationTimestamp: known.creationTimestamp };
    }
    this.#identities.set(key, identity);
    return {
      ...route,
      metadata: { ...route.metadata, generation: identity.generation, creationTimestamp: route.metadata.creationTimestamp ?? identity.creationTimestamp },
    };
  }

  /** A routes file's path (a plain name in the directory: no path.join normalising, 10,000 times a scan). */
  #pathOf(name: string): string {
    return this.#dir + path.sep + name;
  }

  #nowMs(): number {
    return (this.#options.nowMs ?? (() => performance.now()))();
  }
}

/** Routes files: *.yaml and *.yml; dot files are editor temporaries and the ..data links of ConfigMap mounts. */
function isRoutesFileName(name: string): boolean {
  return !name.startsWith('.') && /\.ya?ml$/.test(name);
}

/** Lookups only: every PEM was read by the scan, so compile does no I/O. Paths are relative to the directory. */
function refsOver(dir: string, pems: ReadonlyMap<string, string | undefined>): RefResolver {
  return {
    file: (pemPath) => pems.get(path.resolve(dir, pemPath)),
    secret: () => undefined,
    service: () => undefined,
  };
}

function yieldTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}
