// Pins the chart's observability templates: nothing renders by default; enabled, the dashboard is a
// ConfigMap with Grafana's sidecar label holding the dashboard JSON as it is in files/, and the
// PrometheusRule holds exactly the groups of the plain rules file (each alert with a runbook entry).
// (The ServiceMonitor and the sidecars' PodMonitor are pinned in chart-renders-a-working-install.)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

const ROOT = path.resolve(import.meta.dirname, '../../../..');
const CHART = path.join(ROOT, 'charts/fhirmesh');
const helm = [process.env['FHIRMESH_HELM'], ...(process.env['PATH'] ?? '').split(':').map((dir) => path.join(dir, 'helm'))].find(
  (file): file is string => file !== undefined && file !== '' && fs.existsSync(file),
);

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- rendered manifests, read by path in the assertions
type Manifest = Record<string, any>;

function render(...set: string[]): Manifest[] {
  const text = execFileSync(helm as string, ['template', 'r1', CHART, '-n', 'obs', '--kube-version', '1.37.1', '--set', 'grpc.insecure=true', ...set.flatMap((s) => ['--set', s])], { encoding: 'utf8' });
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as Manifest | null)
    .filter((doc): doc is Manifest => doc !== null);
}

/** The dashboards ConfigMap (the injector's ConfigMap renders too, by default). */
function isDashboard(doc: Manifest): boolean {
  return doc.kind === 'ConfigMap' && String(doc.metadata?.name).endsWith('-dashboards');
}

const rulesFile = parseYaml(fs.readFileSync(path.join(CHART, 'files/alerts/fhirmesh-alerts.yaml'), 'utf8')) as { groups: { name: string; rules: { alert: string; annotations: Record<string, string> }[] }[] };

describe('the alert rules file', () => {
  it('has a runbook entry in docs/operations.md for every alert', () => {
    const runbook = fs.readFileSync(path.join(ROOT, 'docs/operations.md'), 'utf8');
    for (const rule of rulesFile.groups.flatMap((g) => g.rules)) {
      expect(runbook, rule.alert).toContain(`### ${rule.alert}\n`);
      expect(rule.annotations.runbook_url).toMatch(new RegExp(`docs/operations\\.md#${rule.alert.toLowerCase()}$`));
    }
  });
});

describe.skipIf(helm === undefined)('charts/fhirmesh observability templates', () => {
  it('render nothing by default', () => {
    const kinds = render().map((doc) => doc.kind);
    expect(kinds).not.toContain('PrometheusRule');
    expect(kinds).not.toContain('PodMonitor');
    // The injector's ConfigMap renders by default; no dashboard does.
    expect(render().filter(isDashboard)).toEqual([]);
  });

  it('render the dashboard ConfigMap for Grafana’s sidecar, with the dashboard JSON unchanged', () => {
    const [configMap, ...others] = render('monitoring.grafanaDashboard.enabled=true').filter(isDashboard);
    expect(others).toEqual([]);
    expect(configMap?.metadata.labels.grafana_dashboard).toBe('1');
    expect(JSON.parse(configMap?.data['fhirmesh.json'])).toEqual(JSON.parse(fs.readFileSync(path.join(CHART, 'files/dashboards/fhirmesh.json'), 'utf8')));
  });

  it('render the PrometheusRule with the rules file’s groups, plus additional rules by group', () => {
    const [rule] = render('monitoring.prometheusRule.enabled=true', 'monitoring.prometheusRule.labels.release=kps').filter((doc) => doc.kind === 'PrometheusRule');
    expect(rule?.metadata.labels.release).toBe('kps');
    expect(rule?.spec.groups).toEqual(rulesFile.groups);
    const [extended] = render('monitoring.prometheusRule.enabled=true', 'monitoring.prometheusRule.additionalRules.fhirmesh-traffic[0].alert=Mine', 'monitoring.prometheusRule.additionalRules.fhirmesh-traffic[0].expr=vector(1)').filter(
      (doc) => doc.kind === 'PrometheusRule',
    );
    expect(extended?.spec.groups[0].rules.at(-1)).toEqual({ alert: 'Mine', expr: 'vector(1)' });
  });

});
