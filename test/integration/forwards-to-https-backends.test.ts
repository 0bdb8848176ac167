// The real proxy process forwards to HTTPS backends with a private CA named in the routes file
// (tls.caFile relative to it, tls.serverName), presents a client certificate for mutual TLS, answers
// 502 FHIRMESH_UPSTREAM_TLS when the backend cannot be trusted, and never shows private keys.

import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeYaml } from '../support/proxy-fixture.ts';
import { makeRoutesDir, spawnProxy, type RoutesDir, type SpawnedProxy } from '../support/spawn-proxy.ts';
import { makeTestPki, startHttpsUpstream, type HttpsUpstream, type TestPki } from '../support/tls.ts';

const SERVER_NAME = 'fhir.acme.internal';

let pki: TestPki;
let plainTls: HttpsUpstream;
let mutualTls: HttpsUpstream;
let routes: RoutesDir;
let proxy: SpawnedProxy;

function httpsRoute(destination: string, upstream: HttpsUpstream, tls: string): string {
  return routeYaml(destination, `
destination: ${destination}
addressing:
  header: true
backend:
  url: ${upstream.url}/fhir
  tls:
${tls
  .trim()
  .split('\n')
  .map((line) => `    ${line}`)
  .join('\n')}`);
}

beforeAll(async () => {
  routes = makeRoutesDir('');
  // The PEMs sit in a folder beside the routes file and are named relative to it.
  pki = makeTestPki(path.join(routes.dir, 'pki'), SERVER_NAME);
  plainTls = await startHttpsUpstream(pki);
  mutualTls = await startHttpsUpstream(pki, { requireClientCert: true });
  const f = pki.files;
  routes.write(
    httpsRoute('trusted', plainTls, `caFile: pki/${f.ca}\nserverName: ${SERVER_NAME}`) +
      httpsRoute('no-ca', plainTls, `serverName: ${SERVER_NAME}`) +
      httpsRoute('wrong-name', plainTls, `caFile: pki/${f.ca}\nserverName: fhir.other.internal`) +
      httpsRoute(
        'mutual',
        mutualTls,
        `caFile: pki/${f.ca}\nserverName: ${SERVER_NAME}\nclientCertFile: pki/${f.clientCert}\nclientKeyFile: pki/${f.clientKey}`,
      ) +
      httpsRoute('mutual-no-cert', mutualTls, `caFile: pki/${f.ca}\nserverName: ${SERVER_NAME}`),
  );
  proxy = await spawnProxy({ routesFile: routes.file, intermediaryId: 'gw-tls' });
});

afterAll(async () => {
  await proxy.kill();
  await plainTls.close();
  await mutualTls.close();
  routes.remove();
});

function get(destination: string): Promise<Response> {
  return fetch(`${proxy.url}/Patient/p1`, { headers: { 'X-Destination': destination } });
}

/** A 502 that this intermediary raised, with its error code and an OperationOutcome naming it. */
async function expectIntermediary502(res: Response, codes: RegExp): Promise<string> {
  expect(res.status).toBe(502);
  expect(res.headers.get('fhirmesh-intermediary')).toBe('gw-tls');
  const code = res.headers.get('fhirmesh-error') ?? '';
  expect(code).toMatch(codes);
  const outcome = (await res.json()) as { resourceType: string; issue: { diagnostics?: string }[] };
  expect(outcome.resourceType).toBe('OperationOutcome');
  return outcome.issue.map((i) => i.diagnostics ?? '').join(' ');
}

describe('HTTPS backends', () => {
  it('trusts a backend signed by the route\'s caFile, checked against serverName', async () => {
    const res = await get('trusted');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ resourceType: 'Patient', id: 'p1' });
  });

  it('answers 502 FHIRMESH_UPSTREAM_TLS when the route has no CA for a private certificate', async () => {
    const diagnostics = await expectIntermediary502(await get('no-ca'), /^FHIRMESH_UPSTREAM_TLS$/);
    expect(diagnostics).toMatch(/TLS/);
  });

  it('answers 502 FHIRMESH_UPSTREAM_TLS when the certificate does not match serverName', async () => {
    const diagnostics = await expectIntermediary502(await get('wrong-name'), /^FHIRMESH_UPSTREAM_TLS$/);
    expect(diagnostics).toMatch(/server name|ALTNAME/i);
  });

  it('presents the route\'s client certificate to a backend that requires one', async () => {
    const seen = mutualTls.clientNames.length;
    const res = await get('mutual');
    expect(res.status).toBe(200);
    expect(mutualTls.clientNames.slice(seen)).toEqual(['gw-client']);
  });

  it('fails with 502 when the backend requires a client certificate and the route has none', async () => {
    const seen = mutualTls.clientNames.length;
    // TLS 1.3 finishes the client's side of the handshake before the server refuses the missing
    // certificate, so the refusal may arrive as a TLS alert or as a reset.
    await expectIntermediary502(await get('mutual-no-cert'), /^FHIRMESH_UPSTREAM_(TLS|RESET)$/);
    expect(mutualTls.clientNames.length).toBe(seen);
  });

  it('shows TLS settings on /debug/routes without any key or certificate material', async () => {
    const res = await fetch(`${proxy.adminUrl}/debug/routes`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE/);
    const keyBody = pki.clientKeyPem.split('\n').filter((line) => line !== '' && !line.startsWith('-----'));
    for (const line of keyBody) expect(text).not.toContain(line);
    const body = JSON.parse(text) as { routes: { destinationId: string; backend: { tls?: unknown } }[] };
    const mutual = body.routes.find((r) => r.destinationId === 'mutual');
    expect(mutual?.backend.tls).toEqual({ serverName: SERVER_NAME, ca: 'set', clientCertificate: 'set' });
    expect(body.routes.find((r) => r.destinationId === 'no-ca')?.backend.tls).toEqual({
      serverName: SERVER_NAME,
      ca: 'system roots',
      clientCertificate: 'none',
    });
  });
});
