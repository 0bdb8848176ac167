// Command-line flags of fhirmesh-controller; a bad value or combination is refused here with one
// line that says what to fix (main.ts prints it and exits 2).

import { parseArgs } from 'node:util';
import { parseDurationMs } from '../../../api/index.ts';
import { LOG_LEVELS, type LogLevel } from '../telemetry/logger.ts';

export type SourceConfig =
  | { kind: 'directory'; routesDir: string }
  /** kubeconfig absent: in-cluster configuration. */
  | { kind: 'kubernetes'; kubeconfig?: string };

export interface ControllerConfig {
  source: SourceConfig;
  grpcListen: { host: string; port: number };
  adminListen: { host: string; port: number };
  /** Watch one namespace; all when absent. */
  namespace?: string;
  batchWindowMs: number;
  ackTimeoutMs: number;
  logLevel: LogLevel;
}

export class FlagError extends Error {}

export const CONTROLLER_USAGE = `usage: fhirmesh-controller (--routes-dir DIR | --kubeconfig FILE | in a cluster) [options]

  --routes-dir DIR          standalone: FhirRoute YAML files (*.yaml, *.yml), watched
  --kubeconfig FILE         Kubernetes mode with this kubeconfig (in a cluster: the pod's own)
  --grpc-listen HOST:PORT   route discovery for proxies (default 0.0.0.0:15010)
  --admin-listen HOST:PORT  /healthz /readyz /metrics /debug/status (default 127.0.0.1:9902)
  --namespace NAME          read routes of this namespace only (default: all)
  --batch-window DURATION   changes this close together go out as one update (default 100ms)
  --ack-timeout DURATION    a proxy that answers no update within this is dropped (default 15s)
  --log-level LEVEL         debug | info | warn | error (default info)
`;

const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function parseControllerFlags(argv: string[], env: NodeJS.ProcessEnv): ControllerConfig | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      'routes-dir': { type: 'string' },
      kubeconfig: { type: 'string' },
      'grpc-listen': { type: 'string' },
      'admin-listen': { type: 'string' },
      namespace: { type: 'string' },
      'batch-window': { type: 'string' },
      'ack-timeout': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
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
    source = { kind: 'directory', routesDir };
  } else if (kubeconfig !== undefined) {
    if (kubeconfig === '') throw new FlagError('--kubeconfig needs a file');
    source = { kind: 'kubernetes', kubeconfig };
  } else if ((env.KUBERNETES_SERVICE_HOST ?? '') !== '') {
    source = { kind: 'kubernetes' };
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
  const batchWindowMs = duration('--batch-window', values['batch-window'] ?? '100ms', 0, 10_000);
  const ackTimeoutMs = duration('--ack-timeout', values['ack-timeout'] ?? '15s', 1, 600_000);
  return {
    source,
    grpcListen,
    adminListen,
    ...(namespace === undefined ? {} : { namespace }),
    batchWindowMs,
    ackTimeoutMs,
    logLevel: logLevel as LogLevel,
  };
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
