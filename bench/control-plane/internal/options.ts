// Command-line flags of bench/control-plane/run.ts. --quick shrinks the mesh and every window so a
// source takes well under a minute (a smoke test of the harness, not figures). A bad value stops the
// run at once with one line that says what to pass instead.
import { parseArgs } from 'node:util';

export type SourceKind = 'directory' | 'kubernetes';

export interface BenchOptions {
  readonly quick: boolean;
  readonly sources: readonly SourceKind[];
  readonly routes: number;
  readonly namespaces: number;
  readonly proxies: number;
  /** Worker processes the simulated proxies are spread over. */
  readonly workers: number;
  /** One-route changes, one after another. */
  readonly changes: number;
  /** Routes changed at once in the burst. */
  readonly burst: number;
  readonly idleSeconds: number;
  /** Longest wait for the controller to go quiet before idle CPU is read. */
  readonly settleMaxSeconds: number;
  /** Streams opened at once in the reconnect wave; 0: no wave. */
  readonly waveProxies: number;
  /** Longest wait for any one phase (first tables, a change, the burst, the wave). */
  readonly timeoutSeconds: number;
  /** Concurrent requests while creating and editing FhirRoutes through the API. */
  readonly apiConcurrency: number;
  /** The controller is killed past this RSS (MiB): the machine is shared, and a wave once took one to 21 GB. */
  readonly maxControllerRssMiB: number;
  /** Extra flags for fhirmesh-controller (e.g. a tuning flag of a newer controller). */
  readonly controllerArgs: readonly string[];
  readonly outputPath: string;
}

export const USAGE = `usage: node bench/control-plane/run.ts [--quick] [--source directory|kubernetes|both]
  [--routes 10000] [--namespaces 10] [--proxies 1000] [--workers 2] [--changes 30] [--burst 1000]
  [--idle 20] [--settle-max 30] [--wave-proxies 5000] [--timeout 120] [--api-concurrency 32]
  [--max-controller-rss 4096]  [--controller-arg=--flag=value]... [--out bench/results/control-plane.json]`;

export class OptionsError extends Error {}

function integer(flag: string, text: string | undefined, fallback: number, minimum: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < minimum) throw new OptionsError(`--${flag} must be an integer >= ${minimum}, got '${text}'`);
  return value;
}

function sourcesOf(text: string | undefined): SourceKind[] {
  switch (text ?? 'both') {
    case 'directory':
      return ['directory'];
    case 'kubernetes':
      return ['kubernetes'];
    case 'both':
      return ['directory', 'kubernetes'];
    default:
      throw new OptionsError(`--source must be directory, kubernetes or both, got '${text}'`);
  }
}

export function parseOptions(argv: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      quick: { type: 'boolean' },
      source: { type: 'string' },
      routes: { type: 'string' },
      namespaces: { type: 'string' },
      proxies: { type: 'string' },
      workers: { type: 'string' },
      changes: { type: 'string' },
      burst: { type: 'string' },
      idle: { type: 'string' },
      'settle-max': { type: 'string' },
      'wave-proxies': { type: 'string' },
      timeout: { type: 'string' },
      'api-concurrency': { type: 'string' },
      'max-controller-rss': { type: 'string' },
      'controller-arg': { type: 'string', multiple: true },
      out: { type: 'string' },
    },
  });
  const quick = values.quick === true;
  const routes = integer('routes', values.routes, quick ? 1_000 : 10_000, 1);
  const namespaces = integer('namespaces', values.namespaces, 10, 1);
  if (namespaces > routes) throw new OptionsError(`--namespaces ${namespaces} exceeds --routes ${routes}: every namespace needs a route`);
  const proxies = integer('proxies', values.proxies, quick ? 100 : 1_000, 1);
  const burst = integer('burst', values.burst, quick ? 100 : 1_000, 0);
  if (burst > routes) throw new OptionsError(`--burst ${burst} exceeds --routes ${routes}: a burst changes distinct routes`);
  const changes = integer('changes', values.changes, quick ? 5 : 30, 1);
  if (changes > Math.floor(routes / namespaces)) throw new OptionsError(`--changes ${changes} exceeds the ${Math.floor(routes / namespaces)} routes of one namespace: each change edits a distinct route of the real proxy's namespace`);
  return {
    quick,
    sources: sourcesOf(values.source),
    routes,
    namespaces,
    proxies,
    workers: integer('workers', values.workers, 2, 1),
    changes,
    burst,
    idleSeconds: integer('idle', values.idle, quick ? 3 : 20, 1),
    settleMaxSeconds: integer('settle-max', values['settle-max'], quick ? 4 : 30, 0),
    waveProxies: integer('wave-proxies', values['wave-proxies'], quick ? 300 : 5_000, 0),
    timeoutSeconds: integer('timeout', values.timeout, quick ? 30 : 120, 1),
    apiConcurrency: integer('api-concurrency', values['api-concurrency'], 32, 1),
    maxControllerRssMiB: integer('max-controller-rss', values['max-controller-rss'], 4_096, 64),
    controllerArgs: values['controller-arg'] ?? [],
    outputPath: values.out ?? (quick ? 'bench/results/control-plane-quick.json' : 'bench/results/control-plane.json'),
  };
}
