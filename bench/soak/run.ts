// `npm run soak`: steady load through two controller-fed proxies (real processes) while the routes
// churn and the controller is killed and restarted, for --minutes N (default 60). Prints a row per
// interval (requests by outcome, each proxy's RSS and event-loop lag from its /metrics), then the
// counts by outcome, and exits 1 on any outcome the routes did not ask for, on RSS growth past
// --max-rss-growth-mib after the first interval, on more than 1 % of the due requests left unsent (the
// rate not held), or when a proxy does not converge to the final table.
// Not run in CI. Reuses the test harness (test/support): the same spawn helpers and load generator.

import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { startFixedRateLoad, type Outcome } from '../../test/support/fixed-rate-load.ts';
import { freePort, spawnController, type SpawnedController } from '../../test/support/spawn-controller.ts';
import { spawnProxy, type SpawnedProxy } from '../../test/support/spawn-proxy.ts';

const USAGE = `usage: npm run soak -- [--minutes N] [--rate R] [--churn-ms MS] [--restart-every S] [--interval S] [--max-rss-growth-mib M]

  --minutes N              how long (default 60)
  --rate R                 requests per second, over both proxies (default 300)
  --churn-ms MS            one route change every MS (default 500)
  --restart-every S        SIGKILL the controller and start it again every S seconds (default 120)
  --interval S             one report row every S seconds (default 60, at most a tenth of the run)
  --max-rss-growth-mib M   fail when a proxy's RSS grows more than M MiB after the first interval (default 32)
`;

interface Options {
  minutes: number;
  rate: number;
  churnMs: number;
  restartEverySeconds: number;
  intervalSeconds: number;
  maxRssGrowthMiB: number;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      minutes: { type: 'string' },
      rate: { type: 'string' },
      'churn-ms': { type: 'string' },
      'restart-every': { type: 'string' },
      interval: { type: 'string' },
      'max-rss-growth-mib': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help === true) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const number = (name: string, text: string | undefined, fallback: number): number => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value <= 0) {
      process.stderr.write(`--${name} must be a positive number (got ${JSON.stringify(text)})\n${USAGE}`);
      process.exit(2);
    }
    return value;
  };
  const minutes = number('minutes', values.minutes, 60);
  return {
    minutes,
    rate: number('rate', values.rate, 300),
    churnMs: number('churn-ms', values['churn-ms'], 500),
    restartEverySeconds: number('restart-every', values['restart-every'], 120),
    intervalSeconds: number('interval', values.interval, Math.min(60, (minutes * 60) / 10)),
    maxRssGrowthMiB: number('max-rss-growth-mib', values['max-rss-growth-mib'], 32),
  };
}

interface NamedDestination {
  name: string;
  server: http.Server;
  url: string;
}

async function startNamedDestination(name: string): Promise<NamedDestination> {
  const server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    req.resume();
    const body = JSON.stringify({ resourceType: 'Patient', id: name });
    res.writeHead(200, { 'Content-Type': 'application/fhir+json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { name, server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}

function routeManifest(destination: string, backendUrl: string): string {
  return `apiVersion: fhirmesh.io/v1alpha1
kind: FhirRoute
metadata: { name: ${destination}, namespace: payers }
spec:
  destination: ${destination}
  addressing: { pathSegment: true }
  backend: { url: ${backendUrl}/fhir }
`;
}

function getText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve(text));
      })
      .on('error', reject);
  });
}

/** The proxy's event-loop lag since the last scrape (prom-client resets its histogram on each). */
async function lagOf(proxy: SpawnedProxy): Promise<{ p99Ms: number; maxMs: number }> {
  const text = await getText(`${proxy.adminUrl}/metrics`);
  const read = (name: string): number => Number(new RegExp(`^fhirmesh_proxy_${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) * 1000;
  return { p99Ms: read('nodejs_eventloop_lag_p99_seconds'), maxMs: read('nodejs_eventloop_lag_max_seconds') };
}

/** The status of a GET on a new connection (closed after), 0 when it cannot connect. */
function statusOf(url: string): Promise<number> {
  return new Promise((resolve) => {
    http
      .get(url, { agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', () => resolve(0));
  });
}

const MiB = 1024 * 1024;
const pad = (text: string | number, width: number): string => String(text).padStart(width);

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-soak-'));
  const routesDir = path.join(dir, 'routes');
  fs.mkdirSync(routesDir);
  const writeFile = (name: string, text: string): void => {
    const file = path.join(routesDir, name);
    fs.writeFileSync(`${file}.tmp`, text);
    fs.renameSync(`${file}.tmp`, file);
  };
  const a = await startNamedDestination('backend-a');
  const b = await startNamedDestination('backend-b');
  writeFile('steady.yaml', routeManifest('steady', a.url));
  writeFile('flip.yaml', routeManifest('flip', a.url));
  const grpcPort = await freePort();
  let controller: SpawnedController | undefined = await spawnController(['--routes-dir', routesDir, '--grpc-listen', `127.0.0.1:${grpcPort}`]);
  const proxies: SpawnedProxy[] = [];
  for (const name of ['proxy-a', 'proxy-b']) {
    proxies.push(
      await spawnProxy({
        intermediaryId: name,
        args: ['--controller', `127.0.0.1:${grpcPort}`, '--node-id', name, '--namespace', 'payers', '--state-dir', path.join(dir, `state-${name}`), '--no-access-log'],
      }),
    );
  }
  // Wait for both tables before the clock starts.
  for (const proxy of proxies) {
    for (let i = 0; !(await getText(`${proxy.adminUrl}/debug/routes`)).includes('"flip"'); i++) {
      if (i > 200) throw new Error(`${proxy.url} never received its table`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const counts = new Map<string, number>();
  const unexpected: string[] = [];
  let unexpectedCount = 0;
  let intervalRequests = 0;
  let intervalUnexpected = 0;
  const judge = (outcome: Outcome): void => {
    const route = outcome.target.split(' ')[1];
    const answeredBy = outcome.status === 200 ? (JSON.parse(outcome.body) as { id?: string }).id : undefined;
    const ok =
      (route === 'steady' && answeredBy === a.name) ||
      (route === 'flip' && (answeredBy === a.name || answeredBy === b.name)) ||
      (route === 'blink' && (answeredBy === b.name || (outcome.status === 404 && outcome.errorCode === 'FHIRMESH_DESTINATION_UNKNOWN')));
    const key = `${route} ${answeredBy ?? `${outcome.status} ${outcome.errorCode ?? outcome.transportError ?? ''}`.trim()}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    intervalRequests++;
    if (!ok) {
      unexpectedCount++;
      intervalUnexpected++;
      if (unexpected.length < 20) unexpected.push(`${outcome.target}: ${outcome.status} ${outcome.errorCode ?? ''} ${outcome.transportError ?? ''}`);
    }
  };
  const load = startFixedRateLoad({
    targets: proxies.flatMap((proxy, i) => ['steady', 'flip', 'blink'].map((route) => ({ name: `proxy-${i} ${route}`, origin: proxy.url, path: `/${route}/Patient/1` }))),
    requestsPerSecond: options.rate,
    onOutcome: judge,
  });

  let step = 0;
  let flipTo = a;
  let blinkPresent = false;
  // A controller has no last good copy of a file it has never read whole: one that starts while
  // flip.yaml is broken serves no flip (docs/reliability.md). So no broken file until it has read it.
  let flipBroken = false;
  let controllerStarting = false;
  const startController = async (): Promise<SpawnedController> => {
    controllerStarting = true;
    if (flipBroken) {
      writeFile('flip.yaml', routeManifest('flip', flipTo.url));
      flipBroken = false;
    }
    try {
      const started = await spawnController(['--routes-dir', routesDir, '--grpc-listen', `127.0.0.1:${grpcPort}`]);
      // "listening" comes before the first read of the directory; ready comes after it.
      while ((await statusOf(`${started.adminUrl}/readyz`)) !== 200) await new Promise((r) => setTimeout(r, 50));
      return started;
    } finally {
      controllerStarting = false;
    }
  };
  const churn = setInterval(() => {
    step++;
    if (step % 7 === 0 && !controllerStarting) {
      writeFile('flip.yaml', 'spec: [not, valid');
      flipBroken = true;
    } else if (step % 2 === 0 || step % 7 === 0) {
      flipTo = flipTo === a ? b : a;
      writeFile('flip.yaml', routeManifest('flip', flipTo.url));
      flipBroken = false;
    } else {
      blinkPresent = !blinkPresent;
      if (blinkPresent) writeFile('blink.yaml', routeManifest('blink', b.url));
      else fs.rmSync(path.join(routesDir, 'blink.yaml'), { force: true });
    }
  }, options.churnMs);

  let restarts = 0;
  let restarting = false;
  const restarter = setInterval(() => {
    if (restarting) return;
    restarting = true;
    void (async () => {
      await controller?.kill();
      controller = undefined;
      await new Promise((r) => setTimeout(r, 2_000));
      controller = await startController();
      restarts++;
      restarting = false;
    })();
  }, options.restartEverySeconds * 1000);

  process.stdout.write(
    `soak: ${options.minutes} min at ${options.rate} req/s over 2 proxies, a route change every ${options.churnMs} ms, controller killed every ${options.restartEverySeconds} s\n\n` +
      '|    min | requests |  req/s | unexpected | ctrl restarts | RSS proxy-a MiB | RSS proxy-b MiB | lag p99 a/b ms | lag max a/b ms |\n' +
      '| -----: | -------: | -----: | ---------: | ------------: | --------------: | --------------: | -------------: | -------------: |\n',
  );
  const started = performance.now();
  const endAt = started + options.minutes * 60_000;
  const rss: number[][] = [[], []];
  for (let next = started + options.intervalSeconds * 1000; next <= endAt + 1; next += options.intervalSeconds * 1000) {
    await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
    const lags = await Promise.all(proxies.map(lagOf));
    proxies.forEach((proxy, i) => rss[i]?.push(proxy.rssBytes() / MiB));
    const minutes = (performance.now() - started) / 60_000;
    process.stdout.write(
      `| ${pad(minutes.toFixed(1), 6)} | ${pad(intervalRequests, 8)} | ${pad((intervalRequests / options.intervalSeconds).toFixed(0), 6)} | ${pad(intervalUnexpected, 10)} | ${pad(restarts, 13)} | ` +
        `${pad((rss[0]?.at(-1) ?? 0).toFixed(1), 15)} | ${pad((rss[1]?.at(-1) ?? 0).toFixed(1), 15)} | ` +
        `${pad(lags.map((l) => l.p99Ms.toFixed(1)).join(' / '), 14)} | ${pad(lags.map((l) => l.maxMs.toFixed(1)).join(' / '), 14)} |\n`,
    );
    intervalRequests = 0;
    intervalUnexpected = 0;
  }
  clearInterval(churn);
  clearInterval(restarter);
  while (restarting) await new Promise((r) => setTimeout(r, 100));
  writeFile('flip.yaml', routeManifest('flip', b.url));
  fs.rmSync(path.join(routesDir, 'blink.yaml'), { force: true });
  const report = await load.stop();

  // Every proxy converges to the final table.
  const expected = JSON.stringify([`flip ${b.url}/fhir`, `steady ${a.url}/fhir`]);
  const converged: boolean[] = [];
  for (const proxy of proxies) {
    let ok = false;
    for (let i = 0; i < 300 && !ok; i++) {
      const table = JSON.parse(await getText(`${proxy.adminUrl}/debug/routes`)) as { routes: { destinationId: string; backend: { baseUrl: string } }[] };
      ok = JSON.stringify(table.routes.map((r) => `${r.destinationId} ${r.backend.baseUrl}`).sort()) === expected;
      if (!ok) await new Promise((r) => setTimeout(r, 100));
    }
    converged.push(ok);
  }

  for (const proxy of proxies) await proxy.kill();
  await controller?.kill();
  for (const d of [a, b]) {
    d.server.closeAllConnections();
    await new Promise((r) => d.server.close(r));
  }
  fs.rmSync(dir, { recursive: true, force: true });

  process.stdout.write(`\n${report.sent} requests in ${(report.seconds / 60).toFixed(1)} min (${(report.sent / report.seconds).toFixed(0)}/s), ${report.skipped} skipped by the generator, ${restarts} controller restarts, ${step} route changes\n\n| outcome | count |\n| --- | ---: |\n`);
  for (const [key, value] of [...counts].sort()) process.stdout.write(`| ${key} | ${value} |\n`);
  const failures: string[] = [];
  if (unexpectedCount > 0) failures.push(`${unexpectedCount} outcomes the routes did not ask for, e.g.:\n  ${unexpected.join('\n  ')}`);
  // A few skipped after a stall of this process are not the proxies' doing; more means the rate was not held.
  if (report.skipped > report.sent * 0.01) failures.push(`the generator skipped ${report.skipped} requests (the system fell behind ${options.rate}/s)`);
  rss.forEach((series, i) => {
    const after = series.slice(1);
    const base = series[0];
    if (base === undefined || after.length === 0) return;
    const growth = Math.max(...after) - base;
    process.stdout.write(`\nproxy-${'ab'[i]} RSS: ${base.toFixed(1)} MiB after the first interval, at most ${(base + growth).toFixed(1)} MiB later (growth ${growth.toFixed(1)} MiB, bound ${options.maxRssGrowthMiB})`);
    if (growth > options.maxRssGrowthMiB) failures.push(`proxy-${'ab'[i]} RSS grew ${growth.toFixed(1)} MiB after the first interval (bound ${options.maxRssGrowthMiB} MiB)`);
  });
  converged.forEach((ok, i) => {
    if (!ok) failures.push(`proxy-${'ab'[i]} did not converge to the final table`);
  });
  process.stdout.write(failures.length === 0 ? '\n\nsoak passed\n' : `\n\nsoak FAILED:\n- ${failures.join('\n- ')}\n`);
  return failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
