// The real proxy process reloads its routes file when it is replaced (write + rename): a valid file
// changes routing within a second; an invalid one is refused with a JSON error line, counted, and the
// old table keeps serving without a single failed request; a proxy born with a bad file is unready.

import { createHash } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeYaml } from '../support/proxy-fixture.ts';
import { metricValue } from '../support/metrics.ts';
import { makeRoutesDir, spawnProxy, type RoutesDir, type SpawnedProxy } from '../support/spawn-proxy.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';

const REFUSED = 'routes file change refused; keeping the table in force';
const REJECTED_METRIC = 'fhirmesh_proxy_table_rejected_total';
const REPORT_READS = pathToFileURL(path.resolve(import.meta.dirname, '../support/report-file-reads.ts')).href;

let blue: TestUpstream;
let green: TestUpstream;

/** Each upstream says who it is, so a response shows which table routed it. */
function namedUpstream(name: string): Promise<TestUpstream> {
  return startUpstream((_req, res) => {
    const body = JSON.stringify({ resourceType: 'Patient', id: 'p1', meta: { source: name } });
    res.writeHead(200, { 'Content-Type': 'application/fhir+json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
}

function acmeRoute(backendUrl: string): string {
  return routeYaml('acme', `
destination: acme-payer
addressing:
  header: true
backend:
  url: ${backendUrl}/r4`);
}

/** GET through the proxy; resolves with the status and which upstream answered. */
async function askAcme(proxyUrl: string): Promise<{ status: number; source: string | undefined; body: string }> {
  const res = await fetch(`${proxyUrl}/Patient/p1`, { headers: { 'X-Destination': 'acme-payer' } });
  const body = await res.text();
  let source: string | undefined;
  try {
    source = (JSON.parse(body) as { meta?: { source?: string } }).meta?.source;
  } catch {
    source = undefined;
  }
  return { status: res.status, source, body };
}

async function tableVersion(adminUrl: string): Promise<string> {
  const res = await fetch(`${adminUrl}/debug/routes`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { version: string }).version;
}

async function readyStatus(adminUrl: string): Promise<number> {
  return (await fetch(`${adminUrl}/readyz`)).status;
}

/** The proxy binary on `routes`, logging each read of its routes file (test/support/report-file-reads.ts). */
function spawnReportingReads(routes: RoutesDir): Promise<SpawnedProxy> {
  return spawnProxy({ routesFile: routes.file, env: { NODE_OPTIONS: `--import=${REPORT_READS}`, FHIRMESH_TEST_REPORT_READS: routes.file } });
}

/** How many times the proxy has read its routes file while it held `yaml`: each read is one load (watch or poll). */
function readsOf(proxy: SpawnedProxy, yaml: string): number {
  const sha256 = createHash('sha256').update(yaml).digest('hex');
  return proxy.logs.filter((l) => l.msg === 'test: file read' && l.sha256 === sha256).length;
}

const refusals = (proxy: SpawnedProxy): number => proxy.logs.filter((l) => l.msg === REFUSED).length;

/** Keeps `concurrency` request loops going until stopped; every non-200 or network error is a failure. */
function startTraffic(proxyUrl: string, concurrency = 2): { stop(): Promise<{ ok: number; failures: string[]; sources: Set<string> }> } {
  let running = true;
  let ok = 0;
  const failures: string[] = [];
  const sources = new Set<string>();
  const loop = async (): Promise<void> => {
    while (running) {
      try {
        const answer = await askAcme(proxyUrl);
        if (answer.status === 200 && answer.source !== undefined) {
          ok++;
          sources.add(answer.source);
        } else failures.push(`${answer.status} ${answer.body}`);
      } catch (err) {
        failures.push(String(err));
      }
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return { ok, failures, sources };
    },
  };
}

beforeAll(async () => {
  blue = await namedUpstream('blue');
  green = await namedUpstream('green');
});

afterAll(async () => {
  await blue.close();
  await green.close();
});

describe('a running proxy with a valid routes file', () => {
  let routes: RoutesDir;
  let proxy: SpawnedProxy;

  beforeAll(async () => {
    routes = makeRoutesDir(acmeRoute(blue.url));
    proxy = await spawnReportingReads(routes);
  });

  afterAll(async () => {
    await proxy.kill();
    routes.remove();
  });

  it('switches to an edited file within a second and shows the new version', async () => {
    expect((await askAcme(proxy.url)).source).toBe('blue');
    const before = await tableVersion(proxy.adminUrl);
    const loaded = await proxy.waitForLog((l) => l.msg === 'route table loaded');
    expect(loaded.version).toBe(before);

    routes.write(acmeRoute(green.url));
    await expect.poll(async () => (await askAcme(proxy.url)).source, { timeout: 1_000, interval: 20 }).toBe('green');

    const after = await tableVersion(proxy.adminUrl);
    expect(after).not.toBe(before);
    const reloaded = await proxy.waitForLog((l) => l.msg === 'route table reloaded');
    expect(reloaded).toMatchObject({ level: 'info', version: after, routes: 1 });
    expect(await readyStatus(proxy.adminUrl)).toBe(200);
  });

  it('refuses invalid files with an error line and a metric while the old table serves every request', async () => {
    const version = await tableVersion(proxy.adminUrl);
    const rejectedBefore = (await metricValue(proxy.adminUrl, REJECTED_METRIC)) ?? NaN;
    const good = acmeRoute(green.url);
    const invalidEdits: { what: string; yaml: string; problem: RegExp }[] = [
      {
        what: 'a schema-violating route',
        yaml: good.replace('destination: acme-payer', 'destination: Acme_Payer'),
        problem: /^routes\.yaml document 1 \(default\/acme\): spec\.destination: .*Acme_Payer.*DNS label/,
      },
      { what: 'a YAML syntax error', yaml: `${good}\nspec: [unclosed\n`, problem: /^routes\.yaml document \d+: is not valid YAML/ },
      {
        what: 'two routes claiming one destination',
        yaml: good + routeYaml('acme-copy', `
destination: acme-payer
addressing:
  header: true
backend:
  url: ${blue.url}/r4`),
        problem: /acme-payer.*already claimed|already claimed.*acme-payer/,
      },
    ];

    const traffic = startTraffic(proxy.url);
    const refusedBefore = refusals(proxy);
    for (const [index, edit] of invalidEdits.entries()) {
      routes.write(edit.yaml);
      await expect.poll(() => refusals(proxy), { timeout: 3_000 }).toBe(refusedBefore + index + 1);
      const refused = proxy.logs.filter((l) => l.msg === REFUSED).at(-1);
      expect(refused, edit.what).toMatchObject({ level: 'error', stream: 'stderr', version, file: routes.file });
      expect(refused?.problems, edit.what).toEqual(expect.arrayContaining([expect.stringMatching(edit.problem)]));
      expect(await readyStatus(proxy.adminUrl), edit.what).toBe(200);
      expect(await tableVersion(proxy.adminUrl), edit.what).toBe(version);
      expect(await metricValue(proxy.adminUrl, REJECTED_METRIC), edit.what).toBe(rejectedBefore + index + 1);
    }
    // A refused file is read again on every poll (every 2 s): once read again, it was still not
    // reported twice. The metric is counted in the same tick as the read, so it cannot lag behind.
    const last = invalidEdits.at(-1)?.yaml ?? '';
    await expect.poll(() => readsOf(proxy, last), { timeout: 5_000 }).toBeGreaterThanOrEqual(2);
    const result = await traffic.stop();

    expect(result.failures).toEqual([]);
    expect(result.ok).toBeGreaterThan(50);
    expect([...result.sources]).toEqual(['green']);
    expect(await metricValue(proxy.adminUrl, REJECTED_METRIC)).toBe(rejectedBefore + invalidEdits.length);
    expect(proxy.logs.filter((l) => l.msg === 'route table reloaded')).toHaveLength(1);
  });

  it('reports the same bad edit again when a good file came between', async () => {
    const good = acmeRoute(green.url);
    const bad = good.replace('destination: acme-payer', 'destination: Acme_Payer');
    const rejectedBefore = (await metricValue(proxy.adminUrl, REJECTED_METRIC)) ?? NaN;
    const refusedBefore = refusals(proxy);

    routes.write(bad);
    await expect.poll(() => metricValue(proxy.adminUrl, REJECTED_METRIC), { timeout: 2_000 }).toBe(rejectedBefore + 1);
    const goodReads = readsOf(proxy, good);
    routes.write(good);
    // The good file equals the table in force, so nothing is logged: the read is the only sign.
    await expect.poll(() => readsOf(proxy, good), { timeout: 3_000 }).toBeGreaterThan(goodReads);
    routes.write(bad);
    await expect.poll(() => metricValue(proxy.adminUrl, REJECTED_METRIC), { timeout: 2_000 }).toBe(rejectedBefore + 2);

    await expect.poll(() => refusals(proxy)).toBe(refusedBefore + 2);
    expect((await askAcme(proxy.url)).source).toBe('green');
    routes.write(good);
  });
});

describe('a proxy started with an invalid routes file', () => {
  let routes: RoutesDir;
  let proxy: SpawnedProxy;

  let invalid: string;

  beforeAll(async () => {
    invalid = acmeRoute(blue.url).replace('header: true', 'header: maybe-later');
    routes = makeRoutesDir(invalid);
    proxy = await spawnReportingReads(routes);
  });

  afterAll(async () => {
    await proxy.kill();
    routes.remove();
  });

  it('is not ready and answers traffic with a 503 OperationOutcome', async () => {
    const reachedBlue = blue.received.length;
    const refused = await proxy.waitForLog((l) => l.msg === 'routes file refused; not ready until it is fixed');
    expect(refused).toMatchObject({ level: 'error', stream: 'stderr', file: routes.file });
    // Each problem says where it is: file, document, route and field.
    expect(refused.problems).toEqual(expect.arrayContaining([expect.stringMatching(/^routes\.yaml document 1 \(default\/acme\): spec\.addressing\.header: .*true or false/)]));

    const ready = await fetch(`${proxy.adminUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toMatch(/no route table/);

    const res = await fetch(`${proxy.url}/Patient/p1`, { headers: { 'X-Destination': 'acme-payer' } });
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    expect(res.headers.get('fhirmesh-error')).toBe('FHIRMESH_NOT_READY');
    const outcome = (await res.json()) as { resourceType: string; issue: { severity: string; code: string }[] };
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue[0]).toMatchObject({ severity: 'error', code: 'transient' });
    expect(blue.received).toHaveLength(reachedBlue);
    expect(await metricValue(proxy.adminUrl, REJECTED_METRIC)).toBe(1);
  });

  it('keeps counting that file once, however often the poll reads it', async () => {
    // Nothing writes the file here, so every read after the first (at start) is the poll's: a
    // refused file's inputs are unknown, so each poll (every 2 s) reads it again.
    await expect.poll(() => readsOf(proxy, invalid), { timeout: 7_000, interval: 100 }).toBeGreaterThanOrEqual(3);
    expect(await metricValue(proxy.adminUrl, REJECTED_METRIC)).toBe(1);
    expect(proxy.logs.filter((l) => l.level === 'error')).toHaveLength(1);
  });

  it('becomes ready and routes once the file is fixed', async () => {
    routes.write(acmeRoute(blue.url));
    await expect.poll(() => readyStatus(proxy.adminUrl), { timeout: 1_000, interval: 20 }).toBe(200);
    const answer = await askAcme(proxy.url);
    expect(answer).toMatchObject({ status: 200, source: 'blue' });
    const reloaded = await proxy.waitForLog((l) => l.msg === 'route table reloaded');
    expect(reloaded.version).toBe(await tableVersion(proxy.adminUrl));
  });
});
