// The controller binary with --injector-*: the apiserver's view of the webhook. HTTPS with the
// given pair, POST /inject answers an AdmissionReview with the patch, and the CA each sidecar gets
// is read from the file per review (a rotated grpc.tls Secret reaches new pods).

import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { freePort, spawnController, type SpawnedController } from '../support/spawn-controller.ts';
import { makeTestPki, type TestPki } from '../support/tls.ts';

let dir: string;
let pki: TestPki;
let controller: SpawnedController;
let webhookPort: number;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-injector-'));
  pki = makeTestPki(path.join(dir, 'pki'), 'fhirmesh-controller.fhirmesh-system.svc');
  fs.mkdirSync(path.join(dir, 'routes'));
  fs.copyFileSync(path.join(pki.dir, pki.files.ca), path.join(dir, 'ca.crt'));
  const golden = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '../unit/controller/injector/golden/config.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(dir, 'injector.json'), JSON.stringify({ ...golden, controllerTls: { serverName: 'fhirmesh-controller.fhirmesh-system.svc', caFile: path.join(dir, 'ca.crt') } }));
  webhookPort = await freePort();
  controller = await spawnController([
    '--routes-dir',
    path.join(dir, 'routes'),
    `--injector-listen=127.0.0.1:${webhookPort}`,
    `--injector-tls-cert=${path.join(pki.dir, pki.files.serverCert)}`,
    `--injector-tls-key=${path.join(pki.dir, pki.files.serverKey)}`,
    `--injector-config=${path.join(dir, 'injector.json')}`,
  ]);
});

afterAll(async () => {
  await controller?.kill();
  fs.rmSync(dir, { recursive: true, force: true });
});

function post(body: unknown, raw = false): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: webhookPort, path: '/inject', method: 'POST', ca: pki.caPem, servername: 'fhirmesh-controller.fhirmesh-system.svc', headers: { 'Content-Type': 'application/json' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text.startsWith('{') ? JSON.parse(text) : text }));
      },
    );
    req.on('error', reject);
    req.end(raw ? String(body) : JSON.stringify(body));
  });
}

const review = (uid: string) => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: { uid, kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: 'payers', operation: 'CREATE', object: { metadata: { generateName: 'claims-' }, spec: { containers: [{ name: 'app', image: 'example/claims' }] } } },
});

function caOf(answer: unknown): string | undefined {
  const response = (answer as { response: { patch: string } }).response;
  const patch = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as { path: string; value: { env?: { name: string; value?: string }[] }[] }[];
  return patch.find((op) => op.path === '/spec/initContainers')?.value[0]?.env?.find((e) => e.name === 'FHIRMESH_CONTROLLER_CA_PEM')?.value;
}

test('answers POST /inject over HTTPS with the sidecar patch, taking the CA from its file per review', async () => {
  // The webhook starts right after the controller's "listening" line.
  await expect.poll(() => post(review('a0')).catch(() => undefined), { timeout: 10_000 }).toMatchObject({ status: 200 });
  const answer = await post(review('a1'));
  expect(answer.json).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'a1', allowed: true, patchType: 'JSONPatch' } });
  expect(caOf(answer.json)).toBe(pki.caPem);
  // Log lines leave once per event-loop turn, through a pipe: the line may arrive after the answer.
  await expect.poll(() => controller.logs, { timeout: 5_000 }).toContainEqual(expect.objectContaining({ component: 'injector', msg: 'proxy injected', pod: 'payers/claims-*' }));

  const rotated = makeTestPki(path.join(dir, 'pki2'), 'fhirmesh-controller.fhirmesh-system.svc');
  fs.writeFileSync(path.join(dir, 'ca.crt'), rotated.caPem);
  expect(caOf((await post(review('a2'))).json)).toBe(rotated.caPem);
});

test('a body that is not JSON is refused (400): no apiserver sends one', async () => {
  expect(await post('not json', true)).toEqual({ status: 400, json: 'the body is not JSON: send an AdmissionReview\n' });
});
