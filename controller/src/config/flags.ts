// Command-line flags of fhirmesh-controller; a bad value or combination is refused here with one
// line that says what to fix (main.ts prints it and exits 2).

import os from 'node:os';
import { parseArgs } from 'node:util';
import { parseDurationMs } from '../../../api/index.ts';
import { LOG_LEVELS, TracingConfigError, tracingSettings, type LogLevel, type TracingSettings } from '../../../runtime/index.ts';
import { DEFAULT_DIRECTORY_POLL_MS } from '../sources/index.ts';
import { INJECTOR_FLAG_OPTIONS, INJECTOR_USAGE, injectorServeConfigOf, type InjectorServeConfig } from '../injector/index.ts';

export type SourceConfig =
  /** pollMs: --routes-dir-poll, the backstop stat scan's interval (0: none; absent: the source's default). */
  | { kind: 'directory'; routesDir: string; pollMs?: number }
  /** kubeconfig absent: in-cluster configuration. */
  | {
      kind: 'kubernetes';
      kubeconfig?: string;
      /** Lease holder, proxy report name and gRPC controller id: --replica-id, else $POD_NAME, else the host name. */
      replicaId: string;
      /** $POD_NAME and $POD_UID (the chart sets both): this replica's proxy report is owned by its pod, so it goes with the pod. */
      replicaPod?: { name: string; uid: string };
      /** Absent: no election, this replica writes status (one replica). */
      leaderElection?: LeaderElectionConfig;
    };

export type KubernetesSourceConfig = Extract<SourceConfig, { kind: 'kubernetes' }>;

export interface LeaderElectionConfig {
  leaseName: string;
  /** --lease-namespace, else $POD_NAMESPACE; absent: the kubeconfig context's namespace. */
  leaseNamespace?: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

export interface ControllerConfig {
  source: SourceConfig;
  grpcListen: { host: string; port: number };
  /** TLS on --grpc-listen (--grpc-tls-cert, --grpc-tls-key); plaintext when absent. */
  grpcTls?: { certFile: string; keyFile: string };
  /** --insecure-grpc: plaintext chosen on purpose in Kubernetes mode, where TLS is otherwise required. */
  insecureGrpc?: true;
  adminListen: { host: string; port: number };
  /** Watch one namespace; all when absent. */
  namespace?: string;
  batchWindowMs: number;
  ackTimeoutMs: number;
  logLevel: LogLevel;
  /** --injector-*: serve the sidecar injection webhook; absent: no webhook. */
  injector?: InjectorServeConfig;
  /** From the OTEL_* variables; undefined when tracing is off (no OTLP endpoint). */
  tracing?: TracingSettings;
}

export class FlagError extends Error {}

export const CONTROLLER_VERSION = '0.1.0';

/** client-go's defaults, as written on the command line: the usage text and the parser both read them. */
const LEADER_ELECTION_DEFAULTS = { leaseDuration: '15s', renewDeadline: '10s', retryPeriod: '2s' } as const;

export const CONTROLLER_USAGE = `usage: fhirmesh-controller (--routes-dir DIR | --kubeconfig FILE | in a cluster) [options]

  --routes-dir DIR          standalone: FhirRoute YAML files (*.yaml, *.yml), watched
  --routes-dir-poll DURATION  also stat every file this often and read those whose stat changed, for
                            file systems whose watch misses events (NFS) (default 10s; 0s: watch only)
  --kubeconfig FILE         Kubernetes mode with this kubeconfig (in a cluster: the pod's own)
  --grpc-listen HOST:PORT   route discovery for proxies (default 0.0.0.0:15010)
  --grpc-tls-cert FILE      serve it over TLS: PEM certificate chain (with --grpc-tls-key; both re-read
                            when they change). Required in Kubernetes mode
  --grpc-tls-key FILE       the certificate's private key (PEM)
  --insecure-grpc           Kubernetes mode: serve plaintext on purpose (proxy tokens then cross the
                            network unencrypted: only behind a mesh that encrypts, or on loopback)
  --admin-listen HOST:PORT  /healthz /readyz /metrics; /debug/status to loopback clients only (default 127.0.0.1:9902)
  --namespace NAME          read routes of this namespace only (default: all)
  --replica-id NAME         Kubernetes mode: this replica's name, the Lease holder (default: $POD_NAME, else the host name)
  --leader-elect            Kubernetes mode, several replicas: only the holder of a Lease writes status
  --lease-name NAME         the Lease of --leader-elect (default fhirmesh-controller)
  --lease-namespace NAME    its namespace (default: $POD_NAMESPACE, else the kubeconfig context's)
  --leader-elect-lease-duration DURATION  followers take over a Lease not renewed for this long (default ${LEADER_ELECTION_DEFAULTS.leaseDuration})
  --leader-elect-renew-deadline DURATION  the leader steps down when it cannot renew for this long (default ${LEADER_ELECTION_DEFAULTS.renewDeadline})
  --leader-elect-retry-period DURATION    how often followers try for the Lease (default ${LEADER_ELECTION_DEFAULTS.retryPeriod})
  --batch-window DURATION   changes this close together go out as one update (default 100ms)
  --ack-timeout DURATION    a proxy that answers no update within this is dropped (default 15s)
  --log-level LEVEL         debug | info | warn | error (default info)
${INJECTOR_USAGE}
tracing (OpenTelemetry, the standard variables; off unless an endpoint is set): spans of each compile,
  and of the pushes and status writes it causes, linked to it. OTEL_EXPORTER_OTLP_ENDPOINT,
  OTEL_EXPORTER_OTLP_PROTOCOL grpc | http/protobuf (default) | http/json, OTEL_TRACES_SAMPLER and _ARG,
  OTEL_SERVICE_NAME (default fhirmesh-controller), OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*
`;

const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function parseControllerFlags(argv: string[], env: NodeJS.ProcessEnv): ControllerConfig | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      'routes-dir': { type: 'string' },
      'routes-dir-poll': { type: 'string' },
      kubeconfig: { type: 'string' },
      'grpc-listen': { type: 'string' },
      'grpc-tls-cert': { type: 'string' },
      'grpc-tls-key': { type: 'string' },
      'insecure-grpc': { type: 'boolean' },
      'admin-listen': { type: 'string' },
      namespace: { type: 'string' },
      'batch-window': { type: 'string' },
      'ack-timeout': { type: 'string' },
      'log-level': { type: 'string' },
      'replica-id': { type: 'string' },
      'leader-elect': { type: 'boolean' },
      'lease-name': { type: 'string' },
      'lease-namespace': { type: 'string' },
      'leader-elect-lease-duration': { type: 'string' },
      'leader-elect-renew-deadline': { type: 'string' },
      'leader-elect-retry-period': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      ...INJECTOR_FLAG_OPTIONS,
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help === true) return 'help';

  const routesDir = values['routes-dir'];
  const kubeconfig = values.kubeconfig;
  let source: SourceConfig;
  if (routesDir !== undefined && kubeconfig !== undefined) {
    throw new FlagError('--routes-dir and --kubeconfig exclude each other: routes come from a directory (standalone) or from Kubernetes, not both');
  } else if (routesDir !== undefined) {
    if (routesDir === '') throw new FlagError('--routes-dir needs a directory');
    const kubernetesOnly = KUBERNETES_ONLY_FLAGS.filter((flag) => values[flag] !== undefined);
    if (kubernetesOnly.length > 0) {
      throw new FlagError(`${kubernetesOnly.map((flag) => `--${flag}`).join(', ')} need Kubernetes mode (--kubeconfig FILE, or in a cluster), not --routes-dir`);
    }
    source = { kind: 'directory', routesDir, pollMs: routesDirPollOf(values['routes-dir-poll']) };
  } else if (kubeconfig !== undefined || (env.KUBERNETES_SERVICE_HOST ?? '') !== '') {
    if (kubeconfig === '') throw new FlagError('--kubeconfig needs a file');
    if (values['routes-dir-poll'] !== undefined) throw new FlagError('--routes-dir-poll needs --routes-dir: Kubernetes mode watches the API, it has no directory to poll');
    source = {
      kind: 'kubernetes',
      ...(kubeconfig === undefined ? {} : { kubeconfig }),
      replicaId: replicaIdOf(values['replica-id'], env),
      ...(env.POD_NAME && env.POD_UID ? { replicaPod: { name: env.POD_NAME, uid: env.POD_UID } } : {}),
      ...leaderElectionOf(values, env),
    };
  } else {
    throw new FlagError('--routes-dir DIR (standalone) or --kubeconfig FILE is required outside a cluster');
  }

  const namespace = values.namespace;
  if (namespace !== undefined && !NAMESPACE.test(namespace)) {
    throw new FlagError(`--namespace '${namespace}' must be a namespace name (lowercase letters, digits and '-', at most 63)`);
  }
  const logLevel = values['log-level'] ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) throw new FlagError(`--log-level '${logLevel}' must be debug, info, warn or error`);
  const grpcListen = parseHostPort('--grpc-listen', values['grpc-listen'] ?? '0.0.0.0:15010');
  const adminListen = parseHostPort('--admin-listen', values['admin-listen'] ?? '127.0.0.1:9902');
  if (grpcListen.port !== 0 && grpcListen.port === adminListen.port && grpcListen.host === adminListen.host) {
    throw new FlagError('--grpc-listen and --admin-listen must differ');
  }
  const grpcTls = grpcTlsOf(values['grpc-tls-cert'], values['grpc-tls-key'], values['insecure-grpc'] === true, source.kind);
  const batchWindowMs = duration('--batch-window', values['batch-window'] ?? '100ms', 0, 10_000);
  const ackTimeoutMs = duration('--ack-timeout', values['ack-timeout'] ?? '15s', 1, 600_000);
  const injector = injectorServeConfigOf(values, parseHostPort, (message) => {
    throw new FlagError(message);
  });
  let tracing: TracingSettings | undefined;
  try {
    tracing = tracingSettings(env);
  } catch (err) {
    if (err instanceof TracingConfigError) throw new FlagError(err.message);
    throw err;
  }
  return {
    source,
    ...(tracing === undefined ? {} : { tracing }),
    grpcListen,
    ...(grpcTls === undefined ? {} : { grpcTls }),
    ...(values['insecure-grpc'] === true ? { insecureGrpc: true as const } : {}),
    adminListen,
    ...(namespace === undefined ? {} : { namespace }),
    batchWindowMs,
    ackTimeoutMs,
    logLevel: logLevel as LogLevel,
    ...(injector === undefined ? {} : { injector }),
  };
}

/** The default is a backstop: the watch reads an edit within --batch-window; a 10 s stat of 10,000 files costs about 0.5 % of a core. */
function routesDirPollOf(text: string | undefined): number {
  if (text === undefined) return DEFAULT_DIRECTORY_POLL_MS;
  if (text === '0') return 0;
  const ms = parseDurationMs(text);
  if (ms === undefined || (ms !== 0 && (ms < 100 || ms > 3_600_000))) {
    throw new FlagError(`--routes-dir-poll '${text}' must be 0s (watch only) or a duration from 100ms to 3600s, written like 500ms, 10s or 1m`);
  }
  return ms;
}

/**
 * Both TLS files or neither. Kubernetes mode carries service-account tokens on these streams, so it
 * takes plaintext only when told so with --insecure-grpc; standalone is plaintext unless given TLS.
 */
function grpcTlsOf(certFile: string | undefined, keyFile: string | undefined, insecure: boolean, mode: SourceConfig['kind']): { certFile: string; keyFile: string } | undefined {
  if (certFile === '' || keyFile === '') throw new FlagError(`${certFile === '' ? '--grpc-tls-cert' : '--grpc-tls-key'} needs a file`);
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new FlagError('--grpc-tls-cert and --grpc-tls-key go together: give both (the PEM certificate chain and its private key) or neither');
  }
  if (certFile !== undefined && keyFile !== undefined) {
    if (insecure) throw new FlagError('--insecure-grpc and --grpc-tls-cert/--grpc-tls-key exclude each other: serve TLS or plaintext, not both');
    return { certFile, keyFile };
  }
  if (mode === 'kubernetes' && !insecure) {
    throw new FlagError(
      'Kubernetes mode serves proxies over TLS: give --grpc-tls-cert FILE --grpc-tls-key FILE (the chart mounts the Secret grpc.tls.secretName), or --insecure-grpc to serve plaintext on purpose',
    );
  }
  return undefined;
}

const KUBERNETES_ONLY_FLAGS = [
  'replica-id',
  'leader-elect',
  'lease-name',
  'lease-namespace',
  'leader-elect-lease-duration',
  'leader-elect-renew-deadline',
  'leader-elect-retry-period',
] as const;
const LEASE_FLAGS = KUBERNETES_ONLY_FLAGS.filter((flag) => flag !== 'replica-id' && flag !== 'leader-elect');
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function replicaIdOf(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const replicaId = flag ?? (env.POD_NAME || os.hostname());
  if (replicaId === '' || replicaId.length > 253 || /\s/.test(replicaId)) {
    throw new FlagError(`--replica-id '${replicaId}' must be 1-253 characters without spaces (the pod name in a cluster)`);
  }
  return replicaId;
}

function leaderElectionOf(values: Partial<Record<(typeof KUBERNETES_ONLY_FLAGS)[number], string | boolean>>, env: NodeJS.ProcessEnv): { leaderElection?: LeaderElectionConfig } {
  if (values['leader-elect'] !== true) {
    const stray = LEASE_FLAGS.filter((flag) => values[flag] !== undefined);
    if (stray.length > 0) throw new FlagError(`${stray.map((flag) => `--${flag}`).join(', ')} only apply with --leader-elect`);
    return {};
  }
  const leaseName = String(values['lease-name'] ?? 'fhirmesh-controller');
  if (!DNS_SUBDOMAIN.test(leaseName)) throw new FlagError(`--lease-name '${leaseName}' must be a Kubernetes object name (lowercase letters, digits, '-' and '.')`);
  const leaseNamespace = values['lease-namespace'] === undefined ? env.POD_NAMESPACE || undefined : String(values['lease-namespace']);
  if (leaseNamespace !== undefined && !NAMESPACE.test(leaseNamespace)) {
    throw new FlagError(`--lease-namespace '${leaseNamespace}' must be a namespace name (lowercase letters, digits and '-', at most 63)`);
  }
  const leaseDurationMs = duration('--leader-elect-lease-duration', String(values['leader-elect-lease-duration'] ?? LEADER_ELECTION_DEFAULTS.leaseDuration), 1_000, 600_000);
  const renewDeadlineMs = duration('--leader-elect-renew-deadline', String(values['leader-elect-renew-deadline'] ?? LEADER_ELECTION_DEFAULTS.renewDeadline), 100, 600_000);
  const retryPeriodMs = duration('--leader-elect-retry-period', String(values['leader-elect-retry-period'] ?? LEADER_ELECTION_DEFAULTS.retryPeriod), 10, 600_000);
  if (!(leaseDurationMs > renewDeadlineMs && renewDeadlineMs > retryPeriodMs)) {
    const { leaseDuration, renewDeadline, retryPeriod } = LEADER_ELECTION_DEFAULTS;
    throw new FlagError(`--leader-elect-lease-duration must exceed --leader-elect-renew-deadline, which must exceed --leader-elect-retry-period (e.g. ${leaseDuration}, ${renewDeadline}, ${retryPeriod})`);
  }
  return { leaderElection: { leaseName, ...(leaseNamespace === undefined ? {} : { leaseNamespace }), leaseDurationMs, renewDeadlineMs, retryPeriodMs } };
}

export function parseHostPort(flag: string, text: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:]*):(\d{1,5})$/.exec(text);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || port > 65535) throw new FlagError(`${flag} '${text}' must be HOST:PORT, e.g. 127.0.0.1:15010`);
  const host = (m[1] ?? '').replace(/^\[|\]$/g, '');
  return { host: host === '' ? '0.0.0.0' : host, port };
}

function duration(flag: string, text: string, minMs: number, maxMs: number): number {
  const ms = parseDurationMs(text);
  if (ms === undefined || ms < minMs || ms > maxMs) {
    throw new FlagError(`${flag} '${text}' must be a duration from ${minMs}ms to ${maxMs / 1000}s, written like 50ms, 2s or 1m`);
  }
  return ms;
}
