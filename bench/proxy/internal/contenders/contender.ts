// What a contender is (a kind of forwarder plus its own flags and environment) and what the
// measurements need from one that is running: its port, its processes, and a way to stop it.
import type { RoutesOnDisk } from '../routes.ts';
import type { Tools } from '../tools.ts';

export type ContenderKind = 'direct' | 'fhirmesh' | 'nginx' | 'haproxy' | 'node-http' | 'undici';
export const CONTENDER_KINDS: readonly ContenderKind[] = ['direct', 'fhirmesh', 'nginx', 'haproxy', 'node-http', 'undici'];

export interface ContenderSpec {
  /** Row name in the table and key in proxy.json. */
  readonly name: string;
  readonly kind: ContenderKind;
  /** Appended to the kind's own command line (fhirmesh: after --routes/--listen/--admin-listen). */
  readonly args: readonly string[];
  /** Added to the process's environment: how a variant turns tracing (OTEL_*) or anything else on. */
  readonly env: Readonly<Record<string, string>>;
}

/** fhirmesh writes an access line per request unless told not to (flag or environment). */
export function writesAccessLog(spec: ContenderSpec): boolean {
  return spec.kind === 'fhirmesh' && !spec.args.includes('--no-access-log') && spec.env.FHIRMESH_ACCESS_LOG !== 'false';
}

/** The contenders every run has, in the order each round runs them. */
export const STANDARD_CONTENDERS: readonly ContenderSpec[] = [
  { name: 'direct', kind: 'direct', args: [], env: {} },
  { name: 'fhirmesh', kind: 'fhirmesh', args: ['--no-access-log'], env: {} },
  { name: 'fhirmesh-access-log', kind: 'fhirmesh', args: [], env: {} },
  { name: 'nginx', kind: 'nginx', args: [], env: {} },
  { name: 'haproxy', kind: 'haproxy', args: [], env: {} },
  { name: 'node-http', kind: 'node-http', args: [], env: {} },
  { name: 'undici', kind: 'undici', args: [], env: {} },
];

export interface StartContext {
  readonly repoRoot: string;
  readonly tools: Tools;
  readonly upstreamPort: number;
  /** A fresh directory for this start's config files and logs. */
  readonly workDir: string;
  /** fhirmesh: the table it serves, from a routes file, or from a controller already serving it. */
  readonly routes: RoutesOnDisk;
  readonly controllerGrpcPort?: number;
  readonly readyTimeoutMs: number;
}

export interface RunningContender {
  readonly spec: ContenderSpec;
  /** Where the load goes: the contender's listener, or the upstream itself for direct. */
  readonly port: number;
  /** From spawn to ready (fhirmesh: /readyz 200; the others: a forwarded search answered 200). */
  readonly readyMs: number;
  /** The contender's processes now (nginx: master and worker); empty for direct. */
  pids(): number[];
  /** fhirmesh: access lines written so far; null for the others. */
  accessLogLines(): number | null;
  stop(): Promise<void>;
}
