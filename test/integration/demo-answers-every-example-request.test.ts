// `fhirmesh demo` end to end on free ports: every request it prints is answered by the sample
// server it names (Medplum-backed destinations behind the real proxy), and stop() frees everything.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemo, toCurl, type RunningDemo } from '../../cli/src/demo/run-demo.ts';
import { silentLogger } from '../../proxy/src/index.ts';
import http from 'node:http';

let demo: RunningDemo;

beforeAll(async () => {
  demo = await runDemo({ ephemeral: true, logger: silentLogger() });
}, 60_000);

afterAll(async () => {
  await demo.stop();
});

/** node:http, because the demo's host examples set Host, which fetch() refuses to. */
function send(method: string, url: string, headers: Record<string, string>, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('demo', () => {
  it('prints a curl command for every example', () => {
    expect(demo.requests.length).toBeGreaterThanOrEqual(5);
    for (const request of demo.requests) expect(toCurl(request)).toMatch(/^curl -sS -i .*'http:\/\/127\.0\.0\.1:\d+\//);
  });

  it('answers every example from the destination it names', async () => {
    for (const request of demo.requests) {
      const server = request.answeredBy === 'acme' ? demo.acme : demo.labs;
      const before = server.requests.length;
      const res = await send(request.method, request.url, request.headers, request.body);
      if (request.title.startsWith('Intermediary error')) {
        expect(res.status, request.title).toBe(404);
        expect(JSON.parse(res.text).resourceType).toBe('OperationOutcome');
        expect(server.requests.length).toBe(before);
        continue;
      }
      expect(res.status, request.title).toBeLessThan(300);
      expect(server.requests.length, `${request.title} reached ${server.name}`).toBe(before + 1);
    }
  });

  it('hands out the destination public base URL in search results', async () => {
    const res = await send('GET', `${demo.proxy.url}/acme/Patient?_count=1`, { Accept: 'application/fhir+json' });
    const bundle = JSON.parse(res.text);
    expect(bundle.entry[0].fullUrl.startsWith(`${demo.proxy.url}/acme/Patient/`)).toBe(true);
  });
});
