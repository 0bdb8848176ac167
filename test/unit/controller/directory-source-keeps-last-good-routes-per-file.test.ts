// Pins the directory source of standalone mode: which files it reads, fail-static per file, the
// generation and creation time it assigns, PEM files read relative to the directory, no-op skipping;
// and its cost: an event reads only the file it names, within a bounded wait, a scan reads only files
// whose stat changed, and a route that did not change keeps its object from one state to the next.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ControllerError } from '../../../controller/src/index.ts';
import { NODE_DIRECTORY_FILES, type DirectoryFiles } from '../../../controller/src/sources/internal/directory-files.ts';
import { DirectorySource } from '../../../controller/src/sources/index.ts';
import { createLogger } from '../../../runtime/index.ts';

const dirs: string[] = [];
const sources: DirectorySource[] = [];
afterEach(async () => {
  for (const source of sources.splice(0)) await source.stop();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function routeYaml(name: string, extra: { namespace?: string; backend?: string; labels?: string; caFile?: string } = {}): string {
  return `apiVersion: fhirmesh.io/v1alpha1
kind: FhirRoute
metadata:
  name: ${name}
  namespace: ${extra.namespace ?? 'payers'}
${extra.labels === undefined ? '' : `  labels: { team: ${extra.labels} }\n`}spec:
  destination: ${name}
  addressing: { header: true }
  backend:
    url: ${extra.backend ?? `https://${name}.example.org/fhir`}
${extra.caFile === undefined ? '' : `    tls: { caFile: ${extra.caFile} }\n`}`;
}

interface Fixture {
  dir: string;
  source: DirectorySource;
  logs: Record<string, unknown>[];
  changes: () => number;
  /** Each change told: its observedAtMs, and when it was told (performance.now()). */
  observations: { observedAtMs: number; toldAtMs: number }[];
  /** Every file read since the start (or the last reset), relative to the directory. */
  reads: string[];
  write(file: string, text: string): void;
  keys(): string[];
}

/** Files written a minute ago: not racily clean, so a scan trusts their stat. */
function backdate(file: string): void {
  const past = new Date(Date.now() - 60_000);
  fs.utimesSync(file, past, past);
}

async function fixture(
  files: Record<string, string>,
  options: { namespace?: string; debounceMs?: number; pollMs?: number; now?: Date; backdated?: boolean } = {},
): Promise<Fixture> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-dirsrc-'));
  dirs.push(dir);
  for (const [file, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
    if (options.backdated === true) backdate(path.join(dir, file));
  }
  const logs: Record<string, unknown>[] = [];
  const reads: string[] = [];
  const countingFiles: DirectoryFiles = {
    list: (target) => NODE_DIRECTORY_FILES.list(target),
    probe: (paths) => NODE_DIRECTORY_FILES.probe(paths),
    read(file) {
      reads.push(path.relative(dir, file));
      return NODE_DIRECTORY_FILES.read(file);
    },
  };
  const source = new DirectorySource({
    dir,
    logger: createLogger({ level: 'debug', component: 'test', write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>) }),
    // Tests drive rescan() themselves unless they test the watch.
    debounceMs: options.debounceMs ?? 60_000,
    pollMs: options.pollMs ?? 60_000,
    files: countingFiles,
    ...(options.namespace === undefined ? {} : { namespace: options.namespace }),
    ...(options.now === undefined ? {} : { now: () => options.now as Date }),
  });
  sources.push(source);
  const observations: { observedAtMs: number; toldAtMs: number }[] = [];
  source.onChange((observedAtMs) => observations.push({ observedAtMs, toldAtMs: performance.now() }));
  await source.start();
  return {
    dir,
    source,
    logs,
    changes: () => observations.length,
    observations,
    reads,
    write(file, text) {
      fs.writeFileSync(path.join(dir, `.${file}.tmp`), text);
      fs.renameSync(path.join(dir, `.${file}.tmp`), path.join(dir, file));
    },
    keys: () => source.state().routes.map((r) => `${r.metadata.namespace}/${r.metadata.name}`),
  };
}

describe('DirectorySource', () => {
  it('reads every *.yaml and *.yml file in name order, and nothing else', async () => {
    const f = await fixture({
      'b.yml': routeYaml('beta'),
      'a.yaml': routeYaml('acme'),
      '.hidden.yaml': routeYaml('hidden'),
      'notes.txt': routeYaml('text'),
    });
    expect(f.keys()).toEqual(['payers/acme', 'payers/beta']);
    expect(f.source.description).toBe(`directory ${f.dir}`);
  });

  it('keeps the previous routes of a file that stops parsing, logs it once, and takes the fixed file', async () => {
    const f = await fixture({ 'a.yaml': routeYaml('acme'), 'b.yaml': routeYaml('beta') });
    f.write('a.yaml', 'kind: FhirRoute\nmetadata: { name: acme }\nspec: [unfinished');
    f.write('b.yaml', routeYaml('beta', { backend: 'https://beta-v2.example.org/fhir' }));
    await f.source.rescan();
    await f.source.rescan();
    expect(f.keys()).toEqual(['payers/acme', 'payers/beta']);
    expect(f.source.state().routes[1]?.spec.backend.url).toBe('https://beta-v2.example.org/fhir');
    const refusals = f.logs.filter((l) => l.msg === 'routes file refused; its previous routes stay in force');
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ level: 'error', file: 'a.yaml', keptRoutes: 1 });
    expect(f.source.refusedFiles().map((r) => r.file)).toEqual(['a.yaml']);

    f.write('a.yaml', routeYaml('acme', { backend: 'https://acme-v2.example.org/fhir' }));
    await f.source.rescan();
    expect(f.source.state().routes[0]?.spec.backend.url).toBe('https://acme-v2.example.org/fhir');
    expect(f.source.refusedFiles()).toEqual([]);
  });

  it('refuses a file with one invalid route as a whole', async () => {
    const f = await fixture({ 'a.yaml': routeYaml('acme') });
    f.write('a.yaml', routeYaml('acme') + '---\n' + routeYaml('Bad_Name'));
    await f.source.rescan();
    expect(f.keys()).toEqual(['payers/acme']);
    expect(f.source.refusedFiles()[0]?.problems[0]).toMatch(/^a\.yaml document 2/);
  });

  it('counts generations like the apiserver: 1 at first, +1 per spec change, not for metadata', async () => {
    const f = await fixture({ 'a.yaml': routeYaml('acme') }, { now: new Date('2026-03-01T00:00:00.000Z') });
    const generation = (): unknown => f.source.state().routes[0]?.metadata.generation;
    expect(generation()).toBe(1);
    f.write('a.yaml', routeYaml('acme', { labels: 'x' }));
    await f.source.rescan();
    expect(generation()).toBe(1);
    f.write('a.yaml', routeYaml('acme', { labels: 'x', backend: 'https://v2.example.org/fhir' }));
    await f.source.rescan();
    expect(generation()).toBe(2);
    expect(f.source.state().routes[0]?.metadata.creationTimestamp).toBe('2026-03-01T00:00:00.000Z');

    // Deleted and created again: a new object, generation 1.
    fs.rmSync(path.join(f.dir, 'a.yaml'));
    await f.source.rescan();
    f.write('a.yaml', routeYaml('acme'));
    await f.source.rescan();
    expect(generation()).toBe(1);
  });

  it('does not tell listeners about rewrites with the same content', async () => {
    const f = await fixture({ 'a.yaml': routeYaml('acme') });
    const before = f.source.state();
    f.write('a.yaml', routeYaml('acme'));
    await f.source.rescan();
    expect(f.changes()).toBe(0);
    expect(f.source.state()).toBe(before);
  });

  it('drops the routes of a removed file', async () => {
    const f = await fixture({ 'a.yaml': routeYaml('acme'), 'b.yaml': routeYaml('beta') });
    fs.rmSync(path.join(f.dir, 'b.yaml'));
    await f.source.rescan();
    expect(f.keys()).toEqual(['payers/acme']);
    expect(f.changes()).toBe(1);
  });

  it('reads PEM files relative to the directory, answers file() by lookup, and notices a rotated PEM', async () => {
    const f = await fixture({ 'a.yaml': routeYaml('acme', { caFile: 'certs/ca.pem' }) });
    expect(f.source.state().refs.file('certs/ca.pem')).toBeUndefined();
    fs.mkdirSync(path.join(f.dir, 'certs'));
    fs.writeFileSync(path.join(f.dir, 'certs/ca.pem'), 'PEM-1');
    await f.source.rescan();
    expect(f.source.state().refs.file('certs/ca.pem')).toBe('PEM-1');
    expect(f.source.state().refs.file('other.pem')).toBeUndefined();
    expect(f.source.state().refs.secret('payers', 'x', 'ca.crt')).toBeUndefined();
    expect(f.source.state().refs.service('payers', 'x')).toBeUndefined();
    fs.writeFileSync(path.join(f.dir, 'certs/ca.pem'), 'PEM-2');
    await f.source.rescan();
    expect(f.source.state().refs.file('certs/ca.pem')).toBe('PEM-2');
    expect(f.changes()).toBe(2);
  });

  it('uses the first file of a route defined twice, by file name', async () => {
    const f = await fixture({ 'a.yaml': routeYaml('acme'), 'b.yaml': routeYaml('acme', { backend: 'https://other.example.org/fhir' }) });
    expect(f.keys()).toEqual(['payers/acme']);
    expect(f.source.state().routes[0]?.spec.backend.url).toBe('https://acme.example.org/fhir');
    expect(f.logs.find((l) => l.msg === 'route defined in two files; the first file (by name) is used')).toMatchObject({ route: 'payers/acme', used: 'a.yaml', ignored: 'b.yaml' });
  });

  it('reads only the namespace given', async () => {
    const f = await fixture({ 'a.yaml': routeYaml('acme') + '---\n' + routeYaml('labs', { namespace: 'labs' }) }, { namespace: 'labs' });
    expect(f.keys()).toEqual(['labs/labs']);
  });

  it('notices a change through the directory watch', async () => {
    const f = await fixture({ 'a.yaml': routeYaml('acme') }, { debounceMs: 20 });
    f.write('b.yaml', routeYaml('beta'));
    await expect.poll(() => f.changes(), { timeout: 5_000 }).toBeGreaterThan(0);
    expect(f.keys()).toEqual(['payers/acme', 'payers/beta']);
  });

  it('uses the second file once the first no longer defines the route, keeping the generation count', async () => {
    const f = await fixture({ 'a.yaml': routeYaml('acme'), 'b.yaml': routeYaml('acme', { backend: 'https://other.example.org/fhir' }) });
    fs.rmSync(path.join(f.dir, 'a.yaml'));
    await f.source.rescan();
    expect(f.keys()).toEqual(['payers/acme']);
    expect(f.source.state().routes[0]?.spec.backend.url).toBe('https://other.example.org/fhir');
    expect(f.source.state().routes[0]?.metadata.generation).toBe(2);
    expect(f.changes()).toBe(1);
  });

  it('reads only the file an event names, once, and tells when the event arrived', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 200; i++) files[`r${String(i).padStart(3, '0')}.yaml`] = routeYaml(`route-${i}`);
    const f = await fixture(files, { debounceMs: 20 });
    expect(f.reads).toHaveLength(200);
    f.reads.length = 0;
    const editedAtMs = performance.now();
    f.write('r117.yaml', routeYaml('route-117', { backend: 'https://v2.example.org/fhir' }));
    await expect.poll(() => f.changes(), { timeout: 5_000 }).toBe(1);
    expect(f.reads).toEqual(['r117.yaml']);
    expect(f.source.state().routes[117]?.spec.backend.url).toBe('https://v2.example.org/fhir');
    // The event's arrival, before the debounce and the read: what convergence counts from.
    const { observedAtMs, toldAtMs } = f.observations[0] ?? { observedAtMs: NaN, toldAtMs: NaN };
    expect(observedAtMs).toBeGreaterThanOrEqual(editedAtMs);
    expect(toldAtMs - observedAtMs).toBeGreaterThanOrEqual(19);
  });

  it('reads a file within debounceMs of its first event, however steadily events keep coming', async () => {
    const f = await fixture({ 'a.yaml': routeYaml('acme') }, { debounceMs: 50 });
    const startedAtMs = performance.now();
    let seenWhileWriting: number | undefined;
    // A write every 5 ms for 1.5 s: a debounce that waits for quiet would read nothing until the end.
    for (let i = 0; performance.now() - startedAtMs < 1_500; i++) {
      fs.writeFileSync(path.join(f.dir, 'a.yaml'), routeYaml('acme', { backend: `https://v${i}.example.org/fhir` }));
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (seenWhileWriting === undefined && f.changes() > 0) seenWhileWriting = performance.now() - startedAtMs;
    }
    expect(seenWhileWriting).toBeDefined();
    expect(seenWhileWriting).toBeLessThan(1_000);
    expect(f.changes()).toBeGreaterThan(1);
  });

  it('stats but reads no file when nothing changed, PEMs included', async () => {
    const files: Record<string, string> = { 'certs/ca.pem': 'PEM-1' };
    for (let i = 0; i < 50; i++) files[`r${i}.yaml`] = routeYaml(`route-${i}`, i === 0 ? { caFile: 'certs/ca.pem' } : {});
    const f = await fixture(files, { backdated: true });
    expect(f.reads).toHaveLength(51);
    f.reads.length = 0;
    const before = f.source.state();
    await f.source.rescan();
    await f.source.rescan();
    expect(f.reads).toEqual([]);
    expect(f.source.state()).toBe(before);
    expect(f.changes()).toBe(0);

    fs.writeFileSync(path.join(f.dir, 'certs/ca.pem'), 'PEM-2');
    fs.writeFileSync(path.join(f.dir, 'r7.yaml'), routeYaml('route-7', { backend: 'https://v2.example.org/fhir' }));
    await f.source.rescan();
    expect(f.reads.sort()).toEqual(['certs/ca.pem', 'r7.yaml']);
    expect(f.changes()).toBe(1);
  });

  it('keeps the object of every route that did not change from one state to the next', async () => {
    const f = await fixture({
      'a.yaml': routeYaml('acme', { caFile: 'ca.pem' }),
      'b.yaml': routeYaml('beta') + '---\n' + routeYaml('bravo'),
      'c.yaml': routeYaml('gamma'),
      'ca.pem': 'PEM-1',
    });
    const first = f.source.state().routes;
    const byName = (routes: readonly { metadata: { name: string } }[], name: string): unknown => routes.find((r) => r.metadata.name === name);

    // One route of a two-route file edited: only it is a new object.
    f.write('b.yaml', routeYaml('beta', { backend: 'https://beta-v2.example.org/fhir' }) + '---\n' + routeYaml('bravo'));
    await f.source.rescan();
    const second = f.source.state().routes;
    expect(second).not.toBe(first);
    for (const name of ['acme', 'bravo', 'gamma']) expect(byName(second, name)).toBe(byName(first, name));
    expect(byName(second, 'beta')).not.toBe(byName(first, 'beta'));

    // A PEM a route names rotated: that route is a new object (its compiled form changes), same generation.
    fs.writeFileSync(path.join(f.dir, 'ca.pem'), 'PEM-2');
    await f.source.rescan();
    const third = f.source.state().routes;
    expect(byName(third, 'acme')).not.toBe(byName(second, 'acme'));
    expect((byName(third, 'acme') as { metadata: { generation: number } }).metadata.generation).toBe(1);
    for (const name of ['beta', 'bravo', 'gamma']) expect(byName(third, name)).toBe(byName(second, name));
    expect(f.source.state().refs.file('ca.pem')).toBe('PEM-2');
  });

  it('sees a ConfigMap mount swap its ..data link through the watch, with no poll', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-dirsrc-cm-'));
    dirs.push(dir);
    const version = (name: string, text: string): void => {
      fs.mkdirSync(path.join(dir, name));
      fs.writeFileSync(path.join(dir, name, 'routes.yaml'), text);
    };
    // The kubelet's layout: keys link through ..data to a timestamped directory, swapped by rename.
    version('..2026_01_01_00_00_00.1', routeYaml('acme'));
    fs.symlinkSync('..2026_01_01_00_00_00.1', path.join(dir, '..data'));
    fs.symlinkSync('..data/routes.yaml', path.join(dir, 'routes.yaml'));
    const source = new DirectorySource({ dir, logger: createLogger({ component: 'test', write: () => undefined }), debounceMs: 20, pollMs: 0 });
    sources.push(source);
    let changes = 0;
    source.onChange(() => changes++);
    await source.start();
    expect(source.state().routes[0]?.spec.backend.url).toBe('https://acme.example.org/fhir');

    version('..2026_01_01_00_01_00.2', routeYaml('acme', { backend: 'https://acme-v2.example.org/fhir' }));
    fs.symlinkSync('..2026_01_01_00_01_00.2', path.join(dir, '..data_tmp'));
    fs.renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    fs.rmSync(path.join(dir, '..2026_01_01_00_00_00.1'), { recursive: true });
    await expect.poll(() => changes, { timeout: 5_000 }).toBe(1);
    expect(source.state().routes[0]?.spec.backend.url).toBe('https://acme-v2.example.org/fhir');
  });

  it('refuses to start on a directory that does not exist', async () => {
    const source = new DirectorySource({ dir: '/nonexistent/fhirmesh-routes', logger: createLogger({ component: 'test', write: () => undefined }) });
    const failure = await source.start().then(
      () => undefined,
      (err: unknown) => err as ControllerError,
    );
    expect(failure?.code).toBe('FHIRMESH_SOURCE_UNREADABLE');
    expect(failure?.message).toBe('--routes-dir /nonexistent/fhirmesh-routes: cannot read it (ENOENT): create the directory or correct the path');
  });
});
