// runtime/metrics.ts against what Prometheus reads: counters, gauges and histograms with and
// without labels, escaping, scrape-time collection, and the standard process_/nodejs_ names.

import { describe, expect, it } from 'vitest';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from '../../../runtime/metrics.ts';

describe('runtime metrics', () => {
  it('renders labelled counters, gauges and cumulative histogram buckets', async () => {
    const registry = new Registry();
    const requests = new Counter({ name: 'x_requests_total', help: 'Requests.', labelNames: ['destination', 'status'], registers: [registry] });
    const inFlight = new Gauge({ name: 'x_in_flight', help: 'In flight.', registers: [registry] });
    const duration = new Histogram({ name: 'x_duration_seconds', help: 'Duration.', labelNames: ['destination'], buckets: [0.1, 1], registers: [registry] });
    requests.inc({ destination: 'acme', status: 200 });
    requests.inc({ destination: 'acme', status: 200 }, 2);
    requests.inc({ destination: 'labs', status: 502 });
    inFlight.inc();
    inFlight.inc();
    inFlight.dec();
    duration.observe({ destination: 'acme' }, 0.05);
    duration.observe({ destination: 'acme' }, 0.5);
    duration.observe({ destination: 'acme' }, 5);
    expect(await registry.metrics()).toBe(
      [
        '# HELP x_requests_total Requests.',
        '# TYPE x_requests_total counter',
        'x_requests_total{destination="acme",status="200"} 3',
        'x_requests_total{destination="labs",status="502"} 1',
        '# HELP x_in_flight In flight.',
        '# TYPE x_in_flight gauge',
        'x_in_flight 1',
        '# HELP x_duration_seconds Duration.',
        '# TYPE x_duration_seconds histogram',
        'x_duration_seconds_bucket{destination="acme",le="0.1"} 1',
        'x_duration_seconds_bucket{destination="acme",le="1"} 2',
        'x_duration_seconds_bucket{destination="acme",le="+Inf"} 3',
        'x_duration_seconds_sum{destination="acme"} 5.55',
        'x_duration_seconds_count{destination="acme"} 3',
        '',
      ].join('\n'),
    );
  });

  it('escapes label values and help text, and refuses a label it does not declare', async () => {
    const registry = new Registry();
    const info = new Gauge({ name: 'x_info', help: 'Line one\nline \\two', labelNames: ['version'], registers: [registry] });
    info.set({ version: 'a"b\\c\nd' }, 1);
    expect(await registry.metrics()).toContain('# HELP x_info Line one\\nline \\\\two\n# TYPE x_info gauge\nx_info{version="a\\"b\\\\c\\nd"} 1');
    expect(() => info.set({ version: 'v', other: 'x' } as never, 1)).toThrow(/has no label other/);
  });

  it('renders a metric without labels as 0 before anything happened, as prom-client does', async () => {
    const registry = new Registry();
    new Counter({ name: 'x_refused_total', help: 'Refused.', registers: [registry] });
    new Counter({ name: 'x_by_reason_total', help: 'By reason.', labelNames: ['reason'], registers: [registry] });
    const text = await registry.metrics();
    expect(text).toContain('x_refused_total 0');
    expect(text).not.toMatch(/^x_by_reason_total/m);
  });

  it('reads collected gauges at scrape time, and a reset drops series that are gone', async () => {
    const registry = new Registry();
    let backends = [{ backend: 'a', active: 2 }, { backend: 'b', active: 1 }];
    new Gauge({
      name: 'x_sockets',
      help: 'Sockets.',
      labelNames: ['backend'],
      registers: [registry],
      collect() {
        this.reset();
        for (const { backend, active } of backends) this.set({ backend }, active);
      },
    });
    expect(await registry.metrics()).toContain('x_sockets{backend="a"} 2\nx_sockets{backend="b"} 1');
    backends = [{ backend: 'b', active: 4 }];
    const text = await registry.metrics();
    expect(text).toContain('x_sockets{backend="b"} 4');
    expect(text).not.toContain('backend="a"');
  });

  it('names the standard process and Node.js metrics as stock dashboards expect', async () => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const text = await registry.metrics();
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'process_open_fds', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_version_info']) {
      expect(text).toMatch(new RegExp(`^${name}(\\{[^}]*\\})? [0-9.e+-]+$`, 'm'));
    }
  });
});
