// Pins that a proxy fed by the controller never loads the route validator (the CEL library, ajv, the
// YAML parser): every sidecar would pay its memory. The routes-file proxy is the control: it must load them.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnProxy, type SpawnedProxy } from '../support/spawn-proxy.ts';

const RECORDER = pathToFileURL(path.resolve(import.meta.dirname, '../support/record-loaded-modules.ts')).href;
const VALIDATOR_MODULES = /node_modules\/(@marcbachmann\/cel-js|ajv|yaml)\/|api\/fhirroute\/(validate|cel-rules|schema)\.ts$/;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-loaded-'));
const running: SpawnedProxy[] = [];

/** Starts the proxy with `args`, stops it with SIGTERM, and returns the validator modules it loaded. */
async function validatorModulesLoaded(name: string, args: { routesFile?: string; args?: string[] }): Promise<string[]> {
  const listFile = path.join(dir, `${name}.loaded`);
  const proxy = await spawnProxy({
    ...args,
    env: { NODE_OPTIONS: `--import=${RECORDER}`, FHIRMESH_TEST_LOADED_MODULES_FILE: listFile },
  });
  running.push(proxy);
  // main.ts installs its SIGTERM handler just after "proxy listening"; an answered request comes later.
  await fetch(`${proxy.adminUrl}/healthz`);
  proxy.signal('SIGTERM');
  expect((await proxy.waitForExit()).code).toBe(0);
  const loaded = fs.readFileSync(listFile, 'utf8').split('\n');
  expect(loaded.length).toBeGreaterThan(50);
  return loaded.filter((url) => VALIDATOR_MODULES.test(url));
}

describe('which proxy loads the route validator', () => {
  afterAll(async () => {
    await Promise.all(running.map((proxy) => proxy.kill()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a proxy fed by the controller loads none of it', async () => {
    // Nothing listens on port 1: the proxy starts, keeps retrying, and is stopped.
    const loaded = await validatorModulesLoaded('fed', { args: ['--controller', '127.0.0.1:1', '--node-id', 'fed'] });
    expect(loaded).toEqual([]);
  });

  it('a proxy with a routes file loads the CEL library, ajv and the YAML parser', async () => {
    const routesFile = path.join(dir, 'routes.yaml');
    fs.writeFileSync(
      routesFile,
      'apiVersion: fhirmesh.io/v1alpha1\nkind: FhirRoute\nmetadata: { name: acme, namespace: payers }\n' +
        'spec: { destination: acme, addressing: { header: true }, backend: { url: "https://fhir.acme.internal/r4" } }\n',
    );
    const loaded = await validatorModulesLoaded('file', { routesFile });
    for (const library of ['@marcbachmann/cel-js', 'ajv', 'yaml']) {
      expect(loaded.some((url) => url.includes(`/node_modules/${library}/`)), library).toBe(true);
    }
  });
});
