// The routes-file watcher: a PEM the file references, outside the watched directory, is still
// picked up by the poll when it changes; an unchanged set of inputs is not reloaded.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadRoutesFile, watchRoutesFile, type LoadedRoutes, type RoutesFileWatcher } from '../../../proxy/src/table/routes-file.ts';

let dir: string;
let watcher: RoutesFileWatcher | undefined;

afterEach(() => {
  watcher?.close();
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

describe('watchRoutesFile', () => {
  it('lists the PEMs it read among its inputs', () => {
    const { routesFile, caFile } = setUp();
    expect(loadRoutesFile(routesFile).inputs).toEqual([routesFile, caFile]);
  });

  it('reloads when a referenced PEM outside the watched directory changes', async () => {
    const { routesFile, caFile } = setUp();
    const first = loadRoutesFile(routesFile);
    const loaded: LoadedRoutes[] = [];
    watcher = watchRoutesFile(routesFile, first, (l) => loaded.push(l), () => undefined, { debounceMs: 5, pollMs: 30 });
    await new Promise((r) => setTimeout(r, 150));
    expect(loaded).toEqual([]);
    fs.writeFileSync(caFile, 'second CA, longer');
    await expect.poll(() => loaded.length, { timeout: 3_000 }).toBe(1);
    expect(loaded[0]?.snapshot.routes[0]?.backend.tls?.caPem).toBe('second CA, longer');
    expect(loaded[0]?.inputHash).not.toBe(first.inputHash);
  });
});
