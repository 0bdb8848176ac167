// Pins the directory source of standalone mode: which files it reads, fail-static per file, the
// generation and creation time it assigns, PEM files read relative to the directory, no-op skipping.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ControllerError } from '../../../controller/src/index.ts';
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
  write(file: string, text: string): void;
  keys(): string[];
}

async function fixture(files: Record<string, string>, options: { namespace?: string; debounceMs?: number; now?: Date } = {}): Promise<Fixture> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-dirsrc-'));
  dirs.push(dir);
  for (const [file, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), text);
  const logs: Record<string, unknown>[] = [];
  const source = new DirectorySource({
    dir,
    logger: createLogger({ level: 'debug', component: 'test', write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>) }),
    // Tests drive rescan() themselves unless they test the watch.
    debounceMs: options.debounceMs ?? 60_000,
    pollMs: 60_000,
    ...(options.namespace === undefined ? {} : { namespace: options.namespace }),
    ...(options.now === undefined ? {} : { now: () => options.now as Date }),
  });
  sources.push(source);
  let changes = 0;
  source.onChange(() => changes++);
  await source.start();
  return {
    dir,
    source,
    logs,
    changes: () => changes,
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
