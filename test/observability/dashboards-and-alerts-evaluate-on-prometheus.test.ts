// The chart's dashboard and alerts against a real Prometheus scraping a real controller and two
// chained proxies under light load with failing requests: every dashboard expression returns
// series, every alert expression evaluates over metrics that exist, the error-rate alerts fire for
// the failing destinations (and no other alert does), and promtool accepts the rules file.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { eventually } from './support/managed-process.ts';
import { type Mesh, startMesh } from './support/mesh.ts';
import { type Prometheus, startPrometheus } from './support/prometheus.ts';
import { observabilityTools } from './support/tools.ts';

const CHART = path.resolve(import.meta.dirname, '../../charts/fhirmesh');
const RULES_FILE = path.join(CHART, 'files/alerts/fhirmesh-alerts.yaml');
const DASHBOARD_FILE = path.join(CHART, 'files/dashboards/fhirmesh.json');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
}

const rules: Rule[] = (YAML.parse(fs.readFileSync(RULES_FILE, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const dashboard = JSON.parse(fs.readFileSync(DASHBOARD_FILE, 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
/** Grafana's variables, as Grafana would fill them on a dashboard an hour wide over 1 s scrapes. */
const grafana = (expr: string): string => expr.replaceAll('$__rate_interval', '30s').replaceAll('$__range', '5m');

let dir: string;
let mesh: Mesh;
let prometheus: Prometheus;
let load: { stop(): Promise<number> };

/** Light load until stopped (bounded to 10 minutes): reads, searches, lab orders, and requests that fail. */
function startLoad(): { stop(): Promise<number> } {
  let stopped = false;
  let sent = 0;
  const deadline = Date.now() + 600_000;
  const requests: [string, RequestInit][] = [
    [`${mesh.base('acme')}/Patient/1`, {}],
    [`${mesh.base('acme')}/Patient?family=smith`, {}],
    [`${mesh.base('acme')}/ServiceRequest`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: '{"resourceType":"ServiceRequest"}' }],
    [`${mesh.base('flaky')}/Patient/1`, {}],
    [`${mesh.base('down')}/Observation?code=x`, {}],
    [`${mesh.gwA.url}/nowhere/Patient/1`, {}],
  ];
  const loop = (async () => {
    while (!stopped && Date.now() < deadline) {
      const [url, init] = requests[sent % requests.length] as [string, RequestInit];
      sent++;
      const res = await fetch(url, init).catch(() => undefined);
      await res?.arrayBuffer();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return sent;
    },
  };
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-prometheus-'));
  mesh = await startMesh(dir);
  // The rules as shipped, with `for:` cut to 0s so an alert whose expression holds fires within the test.
  const testRules = path.join(dir, 'rules.yaml');
  fs.writeFileSync(testRules, fs.readFileSync(RULES_FILE, 'utf8').replace(/^(\s+)for: \S+$/gm, '$1for: 0s'));
  prometheus = await startPrometheus(observabilityTools().prometheus, dir, { targets: mesh.scrapeTargets(), ruleFiles: [testRules] });
  load = startLoad();
  // A route change while scraped: the controller observes a convergence.
  fs.writeFileSync(
    path.join(dir, 'routes', 'extra.yaml'),
    `apiVersion: fhirmesh.io/v1alpha1\nkind: FhirRoute\nmetadata: { name: extra, namespace: default }\nspec:\n  destination: extra\n  addressing: { header: true }\n  backend: { url: ${mesh.destination.url}/fhir }\n`,
  );
  await eventually('all three targets scraped', async () => (await prometheus.targets()).filter((t) => t.health === 'up').length === 3);
  // Two scrapes with traffic between them: rates exist.
  await eventually('request rates', async () => (await prometheus.query('sum(rate(fhirmesh_proxy_requests_total[30s])) > 0')).length === 1);
});

afterAll(async () => {
  const sent = await load?.stop();
  expect(sent).toBeGreaterThan(0);
  await prometheus?.stop();
  await mesh?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the dashboard', () => {
  const targets = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((t) => ({ panel: panel.title, expr: t.expr })));

  it('has the panels an SRE asks for first', () => {
    const titles = dashboard.panels.map((p) => p.title);
    for (const title of ['Requests by destination', 'Error rate by destination and origin', 'Request latency percentiles', 'Upstream time to first byte (p50, p99)', 'Proxies by sync state', 'Convergence time (p50, p99)', 'Table age', 'Controller leader']) {
      expect(titles).toContain(title);
    }
    expect(targets.length).toBeGreaterThan(20);
  });

  it.each(targets)('$panel: $expr returns series', async ({ expr }) => {
    await expect.poll(async () => (await prometheus.query(grafana(expr))).length, { timeout: 30_000, interval: 500 }).toBeGreaterThan(0);
  });
});

describe('the alert rules', () => {
  it.each(rules)('$alert evaluates, over selectors that each return series', async ({ expr }) => {
    await prometheus.query(expr);
    const selectors = [...expr.matchAll(/\b((?:fhirmesh|process|nodejs)_[a-z_]+)(\{[^}]*\})?/g)].map((m) => m[0]);
    expect(selectors.length).toBeGreaterThan(0);
    for (const selector of selectors) {
      await expect.poll(async () => (await prometheus.query(selector)).length, { timeout: 30_000, interval: 500 }).toBeGreaterThan(0);
    }
  });

  it('fires the destination error-rate alert for the destination that answers 503, at both hops', async () => {
    await expect
      .poll(async () => firing('FhirmeshDestinationErrorRate').then((labels) => labels.map((l) => l.destination).sort()), { timeout: 30_000, interval: 500 })
      .toEqual(['flaky', 'flaky-b']);
  });

  it('fires the intermediary error-rate alert for the destination gw-a cannot reach, naming the error code', async () => {
    await expect
      .poll(async () => firing('FhirmeshIntermediaryErrorRate').then((labels) => labels.map((l) => `${l.destination} ${l.error_code}`)), { timeout: 30_000, interval: 500 })
      .toEqual(['down FHIRMESH_UPSTREAM_REFUSED']);
  });

  it('fires nothing else on a healthy control plane', async () => {
    const names = (await prometheus.alerts()).filter((a) => a.state === 'firing').map((a) => a.labels.alertname);
    expect(new Set(names)).toEqual(new Set(['FhirmeshDestinationErrorRate', 'FhirmeshIntermediaryErrorRate']));
  });

  it('passes promtool check rules', async () => {
    const { stdout } = await promisify(execFile)(observabilityTools().promtool, ['check', 'rules', RULES_FILE]);
    expect(stdout).toContain(`SUCCESS: ${rules.length} rules found`);
  });
});

async function firing(alertname: string): Promise<Record<string, string>[]> {
  return (await prometheus.alerts()).filter((a) => a.labels.alertname === alertname && a.state === 'firing').map((a) => a.labels);
}
