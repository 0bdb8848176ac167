// The routes-file watcher: a PEM the file references, outside the watched directory, is still
// picked up by the poll when it changes; an unchanged set of inputs is stat'ed, never re-read.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadRoutesFile, watchRoutesFile, type LoadedRoutes, type RoutesFileWatcher } from '../../../proxy/src/table/routes-file.ts';

let dir: string;
let watcher: RoutesFileWatcher | undefined;

afterEach(() => {
  watcher?.close();
  vi.restoreAllMocks();
  fs.rmSync(dir, { recursive: true, force: true });
});

function setUp(): { routesFile: string; caFile: string } {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-poll-'));
  fs.mkdirSync(path.join(dir, 'routes'));
  fs.mkdirSync(path.join(dir, 'pem'));
  const routesFile = path.join(dir, 'routes', 'routes.yaml');
  const caFile = path.join(dir, 'pem', 'ca.pem');
  fs.writeFileSync(caFile, 'first CA');
  fs.writeFileSync(
    routesFile,
    `apiVersion: fhirmesh.io/v1alpha1
kind: FhirRoute
metadata: { name: acme, namespace: default }
spec:
  destination: acme
  addressing: { header: true }
  backend: { url: https://127.0.0.1:9/fhir, tls: { caFile: ../pem/ca.pem } }
`,
  );
  return { routesFile, caFile };
}

/**
 * Counts, per path, the stats (one per input per poll) and the reads (one per input per load) the
 * watcher makes: routes-file.ts reads through the same `fs` object the spies wrap.
 */
function countFileAccess(): { stats(file: string): number; reads(file: string): number } {
  const stat = vi.spyOn(fs, 'statSync');
  const read = vi.spyOn(fs, 'readFileSync');
  const count = (spy: { mock: { calls: unknown[][] } }, file: string): number => spy.mock.calls.filter(([p]) => p === file).length;
  return { stats: (file) => count(stat, file), reads: (file) => count(read, file) };
}

const POLLS = 10;

/** Loads the file, then watches it (polling every 20 ms) with the file accesses counted from then on. */
function watchCounting(routesFile: string): { first: LoadedRoutes; loaded: LoadedRoutes[]; access: ReturnType<typeof countFileAccess> } {
  const first = loadRoutesFile(routesFile);
  const access = countFileAccess();
  const loaded: LoadedRoutes[] = [];
  watcher = watchRoutesFile(routesFile, first, (l) => loaded.push(l), () => undefined, { debounceMs: 5, pollMs: 20 });
  return { first, loaded, access };
}

describe('watchRoutesFile', () => {
  it('lists the PEMs it read among its inputs', () => {
    const { routesFile, caFile } = setUp();
    expect(loadRoutesFile(routesFile).inputs).toEqual([routesFile, caFile]);
  });

  it('stats every input on each poll and reads none of them while nothing changed', async () => {
    const { routesFile, caFile } = setUp();
    const { loaded, access } = watchCounting(routesFile);
    await expect.poll(() => Math.min(access.stats(routesFile), access.stats(caFile)), { timeout: 3_000 }).toBeGreaterThanOrEqual(POLLS);
    // Parsing and validating an unchanged file on every poll is the cost this design removes.
    expect([access.reads(routesFile), access.reads(caFile)]).toEqual([0, 0]);
    expect(loaded).toEqual([]);
  });

  it('reloads, reading each input once, when a referenced PEM outside the watched directory changes', async () => {
    const { routesFile, caFile } = setUp();
    const { first, loaded, access } = watchCounting(routesFile);
    // The PEM's directory is not watched: only the poll can see this change, so let it run first.
    await expect.poll(() => access.stats(caFile), { timeout: 3_000 }).toBeGreaterThanOrEqual(2);
    fs.writeFileSync(caFile, 'second CA, longer');
    await expect.poll(() => loaded.length, { timeout: 3_000 }).toBe(1);
    expect(loaded[0]?.snapshot.routes[0]?.backend.tls?.caPem).toBe('second CA, longer');
    expect(loaded[0]?.inputHash).not.toBe(first.inputHash);
    // Later polls see the new signature as the one in force: no second load.
    const statsAtReload = access.stats(caFile);
    await expect.poll(() => access.stats(caFile), { timeout: 3_000 }).toBeGreaterThanOrEqual(statsAtReload + POLLS);
    expect([access.reads(routesFile), access.reads(caFile), loaded.length]).toEqual([1, 1, 1]);
  });
});
