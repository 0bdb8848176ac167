// The last good table on disk comes back exactly: every field of a full and of a minimal route
// (TLS material, rules, public base URL, or none of them), through the state file's JSON.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import type { CompiledRoute } from '../../../api/index.ts';
import { loadState, saveState, stateFilePath } from '../../../proxy/src/discovery/state-file.ts';

const full: CompiledRoute = {
  source: { namespace: 'payers', name: 'acme', generation: 7 },
  destinationId: 'acme-payer',
  addressing: { header: true, pathSegment: true, hosts: ['fhir.acme.example'], queryParameter: true },
  publicBaseUrl: 'https://gw.example.org/acme-payer',
  backend: { baseUrl: 'https://fhir.acme.internal/r4', nextHopDestination: 'acme-east', tls: { serverName: 'fhir.acme.internal', caPem: 'CA', certPem: 'CERT', keyPem: 'KEY' } },
  rules: [{ name: 'labs', resourceTypes: ['ServiceRequest'], interactions: ['create'], methods: ['POST'], backend: { baseUrl: 'http://labs.internal/fhir' } }],
  allowedMethods: ['GET', 'POST'],
  maxRequestBodyBytes: 1024,
  allowEncodedPathSeparators: true,
  connectTimeoutMs: 2000,
  firstByteTimeoutMs: 30000,
  idleTimeoutMs: 60000,
  retryAttempts: 2,
  retryOn: ['connect-failure', 'unavailable'],
  rewriteResponseUrls: true,
  exportTo: ['*'],
};
const minimal: CompiledRoute = {
  ...full,
  destinationId: 'plain',
  addressing: { header: true, pathSegment: false, hosts: [], queryParameter: false },
  backend: { baseUrl: 'http://plain.internal' },
  rules: [],
  exportTo: [],
  allowEncodedPathSeparators: false,
  rewriteResponseUrls: false,
};
delete minimal.publicBaseUrl;

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

it('loads back every field of the routes it saved, in order, with mode 0600', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-state-'));
  dirs.push(dir);
  // More routes than one write holds, so the pieces join into one valid document.
  const many = Array.from({ length: 1_203 }, (_, i) => ({ ...minimal, destinationId: `d${i}` }));
  await saveState(dir, 'v42', [full, minimal, ...many]);
  expect(fs.statSync(stateFilePath(dir)).mode & 0o777).toBe(0o600);
  const loaded = loadState(dir);
  expect(loaded?.snapshot.version).toBe('v42');
  expect(loaded?.snapshot.routes).toEqual([full, minimal, ...many]);
});
