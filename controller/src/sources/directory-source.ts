// Standalone mode's RouteWatcher: every *.yaml / *.yml file in one directory, watched. A file that
// does not parse keeps the routes it had (fail-static per file); PEM files are read here, not in compile.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { formatManifestProblem, parseRouteManifests, referencesOf, type FhirRoute, type RefResolver } from '../../../api/index.ts';
import { canonicalJson, type Logger } from '../../../runtime/index.ts';
import { ControllerError } from '../errors.ts';
import { notifyListeners, type RouteWatcher, type SourceState } from './route-watcher.ts';

export interface DirectorySourceOptions {
  dir: string;
  /** Only routes of this namespace are read (--namespace); all when absent. */
  namespace?: string;
  logger: Logger;
  /** Called once per refused file content (for the reconcile-errors metric). */
  onRefused?: () => void;
  /** Quiet time after a watch event before reading (editors write in several steps). Default 100 ms. */
  debounceMs?: number;
  /** Full rescan interval, for file systems whose watch misses events (NFS, some mounts). Default 2 s. */
  pollMs?: number;
  now?: () => Date;
}

/** What a file gave the last time it parsed. */
interface GoodRead {
  textHash: string;
  routes: FhirRoute[];
  /** Absolute PEM paths the routes name, with their content (undefined: cannot be read). */
  pems: Map<string, string | undefined>;
  pemHash: string;
}

interface FileEntry {
  good?: GoodRead;
  /** The content last refused and why, so a bad file is logged once, not on every poll. */
  refused?: { textHash: string; problems: string[] };
}

/** The apiserver's bookkeeping, imitated: generation counts spec changes, creation time is first sight. */
interface Identity {
  specHash: string;
  generation: number;
  creationTimestamp: string;
}

export class DirectorySource implements RouteWatcher {
  readonly description: string;
  readonly #dir: string;
  readonly #options: DirectorySourceOptions;
  readonly #files = new Map<string, FileEntry>();
  readonly #identities = new Map<string, Identity>();
  readonly #listeners: (() => void)[] = [];
  #state: SourceState;
  #watcher: fs.FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  #rescanWanted = false;
  #started = false;
  #stopped = false;

  constructor(options: DirectorySourceOptions) {
    this.#dir = path.resolve(options.dir);
    this.#options = options;
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
    await this.rescan();
    this.#started = true;
    // The directory, not each file: editors and ConfigMap mounts replace files by rename, which a
    // watch on the old inode never sees. The poll backs up watches that miss events.
    try {
      this.#watcher = fs.watch(this.#dir, { persistent: false }, () => this.#scheduleScan());
      this.#watcher.on('error', (err) => this.#options.logger.log('warn', 'directory watch failed; relying on the poll', { dir: this.#dir, error: String(err) }));
    } catch (err) {
      this.#options.logger.log('warn', 'cannot watch the routes directory; relying on the poll', { dir: this.#dir, error: String(err) });
    }
    this.#poll = setInterval(() => this.#scheduleScan(), this.#options.pollMs ?? 2_000);
    this.#poll.unref();
  }

  state(): SourceState {
    return this.#state;
  }

  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#watcher?.close();
    clearInterval(this.#poll);
    clearTimeout(this.#debounce);
    await this.#scanning;
  }

  /** Files whose current content is refused, with the problems; their previous routes stay in force. */
  refusedFiles(): { file: string; problems: string[] }[] {
    return [...this.#files]
      .filter(([, entry]) => entry.refused !== undefined)
      .map(([file, entry]) => ({ file, problems: entry.refused?.problems ?? [] }));
  }

  /** Reads the directory now (scans never overlap: one asked for meanwhile runs after). */
  rescan(): Promise<void> {
    if (this.#scanning !== undefined) {
      this.#rescanWanted = true;
      return this.#scanning;
    }
    const run = async (): Promise<void> => {
      try {
        do {
          this.#rescanWanted = false;
          await this.#scan();
        } while (this.#rescanWanted && !this.#stopped);
      } finally {
        this.#scanning = undefined;
      }
    };
    this.#scanning = run();
    return this.#scanning;
  }

  #scheduleScan(): void {
    if (this.#stopped) return;
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => {
      this.rescan().catch((err: unknown) => {
        this.#options.onRefused?.();
        this.#options.logger.log('error', 'cannot read the routes directory; keeping the routes in force', { dir: this.#dir, error: String(err) });
      });
    }, this.#options.debounceMs ?? 100);
  }

  async #scan(): Promise<void> {
    const names = (await fs.promises.readdir(this.#dir, { withFileTypes: true }))
      // Dot files are editor temporaries and the ..data links of ConfigMap mounts.
      .filter((e) => !e.name.startsWith('.') && /\.ya?ml$/.test(e.name) && (e.isFile() || e.isSymbolicLink()))
      .map((e) => e.name)
      .sort();
    let changed = false;
    for (const name of names) {
      if (await this.#readFile(name)) changed = true;
    }
    for (const name of [...this.#files.keys()]) {
      if (names.includes(name)) continue;
      this.#files.delete(name);
      this.#options.logger.log('info', 'routes file removed', { file: name });
      changed = true;
    }
    if (changed && !this.#stopped) this.#publish();
  }

  /** Reads one file; true when what it contributes changed. */
  async #readFile(name: string): Promise<boolean> {
    const file = path.join(this.#dir, name);
    const entry = this.#files.get(name) ?? {};
    this.#files.set(name, entry);
    let text: string;
    try {
      text = await fs.promises.readFile(file, 'utf8');
    } catch (err) {
      // Gone between readdir and read: the next scan sees it missing. Unreadable: keep what it had.
      const marker = `unreadable:${codeOf(err)}`;
      if (codeOf(err) !== 'ENOENT' && entry.refused?.textHash !== marker) this.#refuse(name, entry, marker, [`cannot read it (${codeOf(err)})`]);
      return false;
    }
    const textHash = sha256(text);
    if (entry.good?.textHash === textHash) {
      const wasRefused = entry.refused !== undefined;
      entry.refused = undefined;
      if (wasRefused) this.#options.logger.log('info', 'routes file is back to the content in force', { file: name });
      // Same text: only the PEM files it names can have changed (certificate rotation).
      const pems = await readPems([...entry.good.pems.keys()]);
      const pemHash = hashOfPems(pems);
      if (pemHash === entry.good.pemHash) return false;
      entry.good = { ...entry.good, pems, pemHash };
      this.#options.logger.log('info', 'TLS files named by a routes file changed', { file: name });
      return true;
    }
    if (entry.refused?.textHash === textHash) return false;

    const parsed = parseRouteManifests(text, name);
    if (parsed.problems.length > 0) {
      this.#refuse(name, entry, textHash, parsed.problems.map(formatManifestProblem));
      return false;
    }
    const routes = parsed.routes.filter((route) => {
      const namespace = route.metadata.namespace ?? '';
      if (this.#options.namespace === undefined || namespace === this.#options.namespace) return true;
      this.#options.logger.log('warn', 'route outside --namespace ignored', { file: name, route: `${namespace}/${route.metadata.name}`, namespace: this.#options.namespace });
      return false;
    });
    const pems = await readPems(routes.flatMap((route) => referencesOf(route).files.map((p) => path.resolve(this.#dir, p))));
    entry.good = { textHash, routes, pems, pemHash: hashOfPems(pems) };
    entry.refused = undefined;
    this.#options.logger.log('info', 'routes file read', { file: name, routes: routes.length });
    return true;
  }

  #refuse(name: string, entry: FileEntry, textHash: string, problems: string[]): void {
    entry.refused = { textHash, problems };
    this.#options.onRefused?.();
    this.#options.logger.log('error', 'routes file refused; its previous routes stay in force', {
      file: name,
      keptRoutes: entry.good?.routes.length ?? 0,
      problems,
    });
  }

  /** Builds the new state from every file's last good read and tells the listeners. */
  #publish(): void {
    const now = (this.#options.now ?? (() => new Date()))();
    const routes: FhirRoute[] = [];
    const pems = new Map<string, string | undefined>();
    const definedIn = new Map<string, string>();
    for (const [name, entry] of [...this.#files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (entry.good === undefined) continue;
      for (const [pemPath, pem] of entry.good.pems) pems.set(pemPath, pem);
      for (const route of entry.good.routes) {
        const key = `${route.metadata.namespace ?? ''}/${route.metadata.name}`;
        const earlier = definedIn.get(key);
        if (earlier !== undefined) {
          // As a second `kubectl apply` of one name would replace, not add: one object per name.
          this.#options.logger.log('warn', 'route defined in two files; the first file (by name) is used', { route: key, used: earlier, ignored: name });
          continue;
        }
        definedIn.set(key, name);
        routes.push(this.#withIdentity(key, route, now));
      }
    }
    for (const key of [...this.#identities.keys()]) if (!definedIn.has(key)) this.#identities.delete(key);
    this.#state = { routes, refs: refsOver(this.#dir, pems) };
    // The first read is not a change: start() resolving says it happened.
    if (!this.#started) return;
    notifyListeners(this.#listeners, this.#options.logger);
  }

  /**
   * A copy with generation and creationTimestamp as the apiserver would set them: generation counts
   * spec changes, so status can tell which edit proxies run; first sight stands for creation, so a
   * route added later cannot take a destination from an older one by sorting first by name.
   */
  #withIdentity(key: string, route: FhirRoute, now: Date): FhirRoute {
    const specHash = sha256(canonicalJson(route.spec));
    const known = this.#identities.get(key);
    const identity: Identity =
      known === undefined
        ? { specHash, generation: 1, creationTimestamp: route.metadata.creationTimestamp ?? now.toISOString() }
        : known.specHash === specHash
          ? known
          : { ...known, specHash, generation: known.generation + 1 };
    this.#identities.set(key, identity);
    return {
      ...route,
      metadata: { ...route.metadata, generation: identity.generation, creationTimestamp: route.metadata.creationTimestamp ?? identity.creationTimestamp },
    };
  }
}

/** Lookups only: every PEM was read by the scan, so compile does no I/O. Paths are relative to the directory. */
function refsOver(dir: string, pems: ReadonlyMap<string, string | undefined>): RefResolver {
  return {
    file: (pemPath) => pems.get(path.resolve(dir, pemPath)),
    secret: () => undefined,
    service: () => undefined,
  };
}

async function readPems(paths: string[]): Promise<Map<string, string | undefined>> {
  const pems = new Map<string, string | undefined>();
  for (const pemPath of [...new Set(paths)].sort()) {
    pems.set(pemPath, await fs.promises.readFile(pemPath, 'utf8').catch(() => undefined));
  }
  return pems;
}

function hashOfPems(pems: ReadonlyMap<string, string | undefined>): string {
  const hash = createHash('sha256');
  // A missing file hashes differently from an empty one, so its appearance is a change.
  for (const [pemPath, pem] of pems) hash.update(pemPath).update('\0').update(pem === undefined ? '\u0001missing' : `=${pem}`).update('\0');
  return hash.digest('hex');
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}
