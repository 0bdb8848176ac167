// A real Prometheus (Debian's package) on a loopback port picked here, scraping given targets every
// second and evaluating given rule files every second; its HTTP API answers the tests' queries.

import fs from 'node:fs';
import path from 'node:path';
import { startProcess, waitUntil } from './managed-process.ts';
import { freePorts } from './tools.ts';

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PrometheusAlert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
}

export interface Prometheus {
  url: string;
  /** An instant query; throws with Prometheus's own error for an invalid expression. */
  query(expr: string): Promise<Sample[]>;
  alerts(): Promise<PrometheusAlert[]>;
  /** Health of every scrape target, by job and instance. */
  targets(): Promise<{ job: string; instance: string; health: string; lastError: string }[]>;
  stop(): Promise<void>;
}

export async function startPrometheus(binary: string, dir: string, options: { targets: { job: string; instance: string }[]; ruleFiles: string[] }): Promise<Prometheus> {
  const [port] = (await freePorts(1)) as [number];
  const jobs = new Map<string, string[]>();
  for (const { job, instance } of options.targets) jobs.set(job, [...(jobs.get(job) ?? []), instance]);
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: options.ruleFiles,
    scrape_configs: [...jobs].map(([job, instances]) => ({ job_name: job, metrics_path: '/metrics', static_configs: [{ targets: instances }] })),
  };
  const file = path.join(dir, 'prometheus.yml');
  // JSON is YAML: no YAML writer needed.
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  const proc = startProcess(binary, [
    `--config.file=${file}`,
    `--storage.tsdb.path=${path.join(dir, 'prometheus-data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ]);
  const url = `http://127.0.0.1:${port}`;
  await waitUntil('prometheus ready', async () => (await fetch(`${url}/-/ready`)).ok, proc);
  const api = async <T>(pathAndQuery: string): Promise<T> => {
    const res = await fetch(url + pathAndQuery);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${pathAndQuery}: ${body.error ?? res.status}`);
    return body.data;
  };
  return {
    url,
    async query(expr) {
      const data = await api<{ resultType: string; result: Sample[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
      if (data.resultType !== 'vector') throw new Error(`expected a vector from ${expr}, got ${data.resultType}`);
      return data.result;
    },
    async alerts() {
      return (await api<{ alerts: PrometheusAlert[] }>('/api/v1/alerts')).alerts;
    },
    async targets() {
      const data = await api<{ activeTargets: { labels: Record<string, string>; health: string; lastError: string }[] }>('/api/v1/targets');
      return data.activeTargets.map((t) => ({ job: t.labels.job ?? '', instance: t.labels.instance ?? '', health: t.health, lastError: t.lastError }));
    },
    stop: () => proc.stop(),
  };
}
