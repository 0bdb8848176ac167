// Standalone mode: the route table comes from a YAML file of FhirRoute manifests, validated and
// compiled with api/, reloaded when the file changes; a bad file is refused and the old table stays.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { compileRoutes, formatManifestProblem, parseRouteManifests, type RouteTableSnapshot } from '../../../api/index.ts';

export class RoutesFileError extends Error {
  readonly problems: string[];
  constructor(file: string, problems: string[]) {
    super(`routes file ${file} refused: ${problems.join('; ')}`);
    this.problems = problems;
  }
}

export interface LoadedRoutes {
  snapshot: RouteTableSnapshot;
  /** Hash of the file and every PEM it references: unchanged input means nothing to reload. */
  inputHash: string;
  /** Absolute paths of everything read: the file and the PEMs it references. */
  inputs: string[];
}

export function loadRoutesFile(file: string): LoadedRoutes {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new RoutesFileError(file, [`cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`]);
  }
  // Each problem names its document, route and field: a bare message cannot be found in a long file.
  const { routes, problems } = parseRouteManifests(text, path.basename(file));
  if (problems.length > 0) throw new RoutesFileError(file, problems.map(formatManifestProblem));

  const dir = path.dirname(path.resolve(file));
  const hash = createHash('sha256').update(text);
  const files = new Map<string, string>();
  const read = (ref: string): string | undefined => {
    const absolute = path.resolve(dir, ref);
    if (!files.has(absolute)) {
      try {
        files.set(absolute, fs.readFileSync(absolute, 'utf8'));
      } catch {
        return undefined;
      }
    }
    return files.get(absolute);
  };
  const result = compileRoutes(routes, {
    file: read,
    secret: () => undefined,
    service: () => undefined,
  });
  const refused = result.results.filter((r) => !r.accepted || !r.resolvedRefs);
  if (refused.length > 0) throw new RoutesFileError(file, refused.map((r) => `${r.key}: ${r.message}`));
  for (const [name, content] of [...files].sort()) hash.update(name).update(content);
  return { snapshot: result.snapshot, inputHash: hash.digest('hex'), inputs: [path.resolve(file), ...[...files.keys()].sort()] };
}

export interface RoutesFileWatcher {
  close(): void;
}

/**
 * Watches the file's directory, not the file: editors and Kubernetes ConfigMap mounts replace the
 * file by rename, which a watch on the old inode never sees. A slow poll backs the watch up.
 */
export function watchRoutesFile(
  file: string,
  last: LoadedRoutes | undefined,
  onLoaded: (loaded: LoadedRoutes) => void,
  onRefused: (err: RoutesFileError) => void,
  options: { debounceMs?: number; pollMs?: number; alreadyRefused?: RoutesFileError } = {},
): RoutesFileWatcher {
  const debounceMs = options.debounceMs ?? 100;
  let currentHash = last?.inputHash ?? '';
  // The poll only reloads when a stat of an input differs: parsing and validating an unchanged
  // file every two seconds in every sidecar is work for nothing. Unknown inputs (nothing loaded
  // yet, or a refused file) are always re-read.
  let inputs = last?.inputs;
  let inputsSignature = inputs === undefined ? undefined : signatureOf(inputs);
  // The caller's own first load may have refused the file already: that is not news on the first poll.
  let refusedHash: string | undefined = options.alreadyRefused?.message;
  let pending: NodeJS.Timeout | undefined;
  const check = (): void => {
    pending = undefined;
    try {
      const loaded = loadRoutesFile(file);
      // A good file in between (even the one in force) makes the next bad file news again.
      refusedHash = undefined;
      inputs = loaded.inputs;
      inputsSignature = signatureOf(loaded.inputs);
      if (loaded.inputHash === currentHash) return;
      onLoaded(loaded);
      currentHash = loaded.inputHash;
    } catch (thrown) {
      inputs = undefined;
      // This runs on a timer: anything thrown here would end the process, so every failure is a
      // refusal that keeps the table in force (e.g. a table whose maps cannot be built).
      const err = thrown instanceof RoutesFileError ? thrown : new RoutesFileError(file, [thrown instanceof Error ? thrown.message : String(thrown)]);
      // Report a given bad file once, not on every poll.
      const key = err.message;
      if (key === refusedHash) return;
      refusedHash = key;
      onRefused(err);
    }
  };
  const schedule = (): void => {
    if (pending !== undefined) clearTimeout(pending);
    pending = setTimeout(check, debounceMs);
  };
  const watcher = fs.watch(path.dirname(path.resolve(file)), { persistent: false }, schedule);
  watcher.on('error', () => undefined);
  const poll = setInterval(() => {
    if (inputs === undefined || signatureOf(inputs) !== inputsSignature) schedule();
  }, options.pollMs ?? 2_000);
  poll.unref();
  return {
    close() {
      watcher.close();
      clearInterval(poll);
      if (pending !== undefined) clearTimeout(pending);
    },
  };
}

/** Inode, size and mtime of each input (through symlinks, as ConfigMap mounts swap them). */
function signatureOf(paths: readonly string[]): string {
  return paths
    .map((p) => {
      try {
        const st = fs.statSync(p);
        return `${st.ino}:${st.size}:${st.mtimeMs}`;
      } catch {
        return 'missing';
      }
    })
    .join('|');
}
