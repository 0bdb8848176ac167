// Command-line flags of fhirmesh-proxy, each also readable from a FHIRMESH_* environment variable;
// a bad value or combination is refused here with one line that says what to fix.

import fs from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { TracingConfigError, tracingSettings, type TracingSettings } from '../../../runtime/index.ts';
import type { ControllerSourceConfig } from '../discovery/controller-source.ts';
import { DEFAULT_LIMITS, LIMIT_FLAGS, type ProxyLimits } from './limits.ts';

export interface ProxyConfig {
  /** Standalone: the routes file. Exactly one of routesFile and controller is set. */
  routesFile?: string;
  controller?: ControllerSourceConfig;
  listen: { host: string; port: number };
  adminListen: { host: string; port: number };
  intermediaryId: string;
  shutdownGraceMs: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  accessLog: boolean;
  /** Request headers copied into access lines (lower case); credentials among them are redacted. */
  logHeaders?: string[];
  /** Header names redacted besides authorization, proxy-authorization, cookie and set-cookie. */
  redactHeaders?: string[];
  /** From the OTEL_* variables; undefined when tracing is off (no OTLP endpoint). */
  tracing?: TracingSettings;
  /** Defaults (config/limits.ts) for what is not given. */
  limits?: Partial<ProxyLimits>;
  /** --tls-cert/--tls-key: the originator-facing listener speaks TLS with this pair. */
  listenTls?: { certFile: string; keyFile: string; /** How often the files are read again (default 10 s). */ reloadIntervalMs?: number };
}

export class FlagError extends Error {}

export const PROXY_USAGE = `usage: fhirmesh-proxy (--routes FILE | --controller HOST:PORT) [options]

  --routes FILE            FhirRoute manifests (YAML); reloaded on change      FHIRMESH_ROUTES
  --controller HOST:PORT   stream routes from a fhirmesh controller            FHIRMESH_CONTROLLER
  --node-id NAME           this proxy's id at the controller                   FHIRMESH_NODE_ID, POD_NAME
                           (default: the host name)
  --namespace NAME         whose routes to serve (default default)             FHIRMESH_NAMESPACE, POD_NAMESPACE
  --labels K=V,...         labels reported to the controller                   FHIRMESH_LABELS
  --state-dir DIR          keeps the last good table; used when the            FHIRMESH_STATE_DIR
                           controller is unreachable at start
  --controller-ca FILE     TLS to the controller, trusting this CA (PEM)       FHIRMESH_CONTROLLER_CA
                           (or the PEM itself in FHIRMESH_CONTROLLER_CA_PEM)
  --controller-server-name NAME   name in the controller's certificate         FHIRMESH_CONTROLLER_SERVER_NAME
  --token-file FILE        projected service-account token (audience           FHIRMESH_TOKEN_FILE
                           fhirmesh) sent to the controller; re-read on connect
  --listen HOST:PORT       originator-facing listener (default 0.0.0.0:8080)   FHIRMESH_LISTEN
  --tls-cert FILE          serve the listener over TLS with this PEM chain     FHIRMESH_TLS_CERT
  --tls-key FILE           and its key (reloaded when the files change)        FHIRMESH_TLS_KEY
  --admin-listen HOST:PORT /healthz /readyz /metrics, and /debug/routes       FHIRMESH_ADMIN_LISTEN
                           to loopback clients only (default 127.0.0.1:9901)
  --intermediary-id NAME   this hop's name in Via and OperationOutcome         FHIRMESH_INTERMEDIARY_ID
                           (default fhirmesh-<hostname>)
  --shutdown-grace SECONDS time in-flight requests get on SIGTERM (default 25) FHIRMESH_SHUTDOWN_GRACE
  --log-level LEVEL        debug | info | warn | error (default info)          FHIRMESH_LOG_LEVEL
  --no-access-log          no access line per request                          FHIRMESH_ACCESS_LOG=false
  --log-headers NAMES      request headers copied into access lines            FHIRMESH_LOG_HEADERS
                           (comma-separated, e.g. x-request-id,user-agent)
  --redact-headers NAMES   header values written as [REDACTED] besides         FHIRMESH_REDACT_HEADERS
                           authorization, proxy-authorization, cookie, set-cookie

tracing (OpenTelemetry, the standard variables; off unless an endpoint is set):
  OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT), OTEL_EXPORTER_OTLP_PROTOCOL grpc | http/protobuf
  (default) | http/json, OTEL_TRACES_SAMPLER (default parentbased_always_on) and _ARG, OTEL_SERVICE_NAME
  (default fhirmesh-proxy), OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_*

limits (what an originator may send; see docs/reliability.md):
  --max-header-bytes N     request line + headers (default 16384) → 431/414    FHIRMESH_MAX_HEADER_BYTES
  --max-headers N          header fields per request (default 100) → 431       FHIRMESH_MAX_HEADERS
  --max-url-bytes N        request target (default 8192) → 414                 FHIRMESH_MAX_URL_BYTES
  --headers-timeout SECONDS  to receive a request head (default 30) → 408     FHIRMESH_HEADERS_TIMEOUT
  --keep-alive-timeout SECONDS  idle client connections (default 65)          FHIRMESH_KEEP_ALIVE_TIMEOUT
  --max-concurrent-per-destination N  in flight per destination               FHIRMESH_MAX_CONCURRENT_PER_DESTINATION
                           (default 1024) → 503 + Retry-After
`;

const INTERMEDIARY_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function parseProxyFlags(argv: string[], env: NodeJS.ProcessEnv): ProxyConfig | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      routes: { type: 'string' },
      controller: { type: 'string' },
      'node-id': { type: 'string' },
      namespace: { type: 'string' },
      labels: { type: 'string' },
      'state-dir': { type: 'string' },
      'controller-ca': { type: 'string' },
      'controller-server-name': { type: 'string' },
      'token-file': { type: 'string' },
      listen: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'admin-listen': { type: 'string' },
      'intermediary-id': { type: 'string' },
      'shutdown-grace': { type: 'string' },
      'log-level': { type: 'string' },
      'no-access-log': { type: 'boolean' },
      'log-headers': { type: 'string' },
      'redact-headers': { type: 'string' },
      ...Object.fromEntries(LIMIT_FLAGS.map(([flag]) => [flag, { type: 'string' as const }])),
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help === true) return 'help';

  const routesFile = nonEmpty(values.routes ?? env.FHIRMESH_ROUTES);
  const controllerAddress = nonEmpty(values.controller ?? env.FHIRMESH_CONTROLLER);
  if (routesFile === undefined && controllerAddress === undefined) {
    throw new FlagError('give --routes FILE (standalone) or --controller HOST:PORT (or FHIRMESH_ROUTES / FHIRMESH_CONTROLLER): where the routes come from');
  }
  if (routesFile !== undefined && controllerAddress !== undefined) {
    throw new FlagError('--routes and --controller exclude each other: choose a routes file or a controller');
  }
  let controller: ControllerSourceConfig | undefined;
  if (controllerAddress !== undefined) {
    parseHostPort('--controller', controllerAddress);
    const nodeId = nonEmpty(values['node-id'] ?? env.FHIRMESH_NODE_ID ?? env.POD_NAME) ?? os.hostname();
    const namespace = nonEmpty(values.namespace ?? env.FHIRMESH_NAMESPACE ?? env.POD_NAMESPACE) ?? 'default';
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) throw new FlagError(`--namespace '${namespace}' must be a Kubernetes namespace name (a DNS label)`);
    controller = {
      address: controllerAddress,
      identity: { nodeId, namespace, labels: parseLabels(values.labels ?? env.FHIRMESH_LABELS ?? ''), proxyVersion: PROXY_VERSION },
      stateDir: nonEmpty(values['state-dir'] ?? env.FHIRMESH_STATE_DIR),
    };
    const caFile = nonEmpty(values['controller-ca'] ?? env.FHIRMESH_CONTROLLER_CA);
    // The injected sidecar gets the CA inline (as linkerd passes its trust anchors): no per-namespace copy.
    const caPemInline = nonEmpty(env.FHIRMESH_CONTROLLER_CA_PEM);
    const serverName = nonEmpty(values['controller-server-name'] ?? env.FHIRMESH_CONTROLLER_SERVER_NAME);
    if (caFile !== undefined && caPemInline !== undefined) {
      throw new FlagError('--controller-ca and FHIRMESH_CONTROLLER_CA_PEM exclude each other: give the CA as a file or inline, not both');
    }
    if (caFile !== undefined || caPemInline !== undefined) {
      let caPem: string;
      try {
        caPem = caPemInline ?? fs.readFileSync(caFile ?? '', 'utf8');
      } catch (err) {
        throw new FlagError(`--controller-ca '${caFile}' cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      }
      if (!caPem.includes('-----BEGIN CERTIFICATE-----')) {
        throw new FlagError(`${caPemInline === undefined ? `--controller-ca '${caFile}'` : 'FHIRMESH_CONTROLLER_CA_PEM'} holds no PEM certificate: give the CA that issued the controller's certificate`);
      }
      controller.tls = serverName === undefined ? { caPem } : { caPem, serverName };
    } else if (serverName !== undefined) {
      throw new FlagError('--controller-server-name needs --controller-ca: it names the certificate TLS checks');
    }
    const tokenFile = nonEmpty(values['token-file'] ?? env.FHIRMESH_TOKEN_FILE);
    if (tokenFile !== undefined) controller.tokenFile = tokenFile;
  }

  // A refused value is quoted under the name it was given by: the flag, or its environment variable.
  const setting = (flag: string, envName: string, fallback: string): { value: string; name: string } => {
    const fromFlag = values[flag as keyof typeof values];
    if (typeof fromFlag === 'string') return { value: fromFlag, name: `--${flag}` };
    const fromEnv = env[envName];
    return fromEnv === undefined ? { value: fallback, name: `--${flag}` } : { value: fromEnv, name: envName };
  };

  const id = setting('intermediary-id', 'FHIRMESH_INTERMEDIARY_ID', defaultIntermediaryId());
  const intermediaryId = id.value;
  if (!INTERMEDIARY_ID.test(intermediaryId)) {
    throw new FlagError(`${id.name} '${intermediaryId}' must be 1-63 letters, digits, '.', '_' or '-' (it is a Via token)`);
  }
  const graceSetting = setting('shutdown-grace', 'FHIRMESH_SHUTDOWN_GRACE', '25');
  const grace = Number(graceSetting.value);
  if (graceSetting.value.trim() === '' || !Number.isFinite(grace) || grace < 0) {
    throw new FlagError(`${graceSetting.name} '${graceSetting.value}' must be a number of seconds >= 0`);
  }
  const level = setting('log-level', 'FHIRMESH_LOG_LEVEL', 'info');
  const logLevel = level.value;
  if (logLevel !== 'debug' && logLevel !== 'info' && logLevel !== 'warn' && logLevel !== 'error') {
    throw new FlagError(`${level.name} '${logLevel}' must be debug, info, warn or error`);
  }
  const listenSetting = setting('listen', 'FHIRMESH_LISTEN', '0.0.0.0:8080');
  const listen = parseHostPort(listenSetting.name, listenSetting.value);
  const adminSetting = setting('admin-listen', 'FHIRMESH_ADMIN_LISTEN', '127.0.0.1:9901');
  const adminListen = parseHostPort(adminSetting.name, adminSetting.value);
  if (listen.port !== 0 && listen.port === adminListen.port && listen.host === adminListen.host) {
    throw new FlagError('--listen and --admin-listen must differ');
  }
  const tlsCert = nonEmpty(values['tls-cert'] ?? env.FHIRMESH_TLS_CERT);
  const tlsKey = nonEmpty(values['tls-key'] ?? env.FHIRMESH_TLS_KEY);
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    throw new FlagError('--tls-cert and --tls-key go together: give the certificate chain and its key, or neither');
  }
  const limits: ProxyLimits = { ...DEFAULT_LIMITS };
  for (const [flag, envName, field, unit] of LIMIT_FLAGS) {
    const given = setting(flag, envName, '');
    if (given.value === '') continue;
    const n = Number(given.value);
    if (!Number.isFinite(n) || n <= 0 || (unit !== 'seconds' && !Number.isInteger(n))) {
      throw new FlagError(`${given.name} '${given.value}' must be a positive ${unit === 'seconds' ? 'number of seconds' : 'whole number'}`);
    }
    limits[field] = unit === 'seconds' ? Math.round(n * 1000) : n;
  }
  let tracing: TracingSettings | undefined;
  try {
    tracing = tracingSettings(env);
  } catch (err) {
    if (err instanceof TracingConfigError) throw new FlagError(err.message);
    throw err;
  }
  return {
    ...(routesFile !== undefined ? { routesFile } : {}),
    ...(controller !== undefined ? { controller } : {}),
    ...(tracing !== undefined ? { tracing } : {}),
    logHeaders: headerNames(setting('log-headers', 'FHIRMESH_LOG_HEADERS', '')),
    redactHeaders: headerNames(setting('redact-headers', 'FHIRMESH_REDACT_HEADERS', '')),
    listen,
    adminListen,
    intermediaryId,
    shutdownGraceMs: grace * 1000,
    logLevel,
    accessLog: values['no-access-log'] !== true && env.FHIRMESH_ACCESS_LOG !== 'false',
    limits,
    ...(tlsCert !== undefined && tlsKey !== undefined ? { listenTls: { certFile: tlsCert, keyFile: tlsKey } } : {}),
  };
}

export const PROXY_VERSION = '0.1.0';

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function headerNames(given: { value: string; name: string }): string[] {
  const names = given.value.split(',').map((n) => n.trim().toLowerCase()).filter((n) => n !== '');
  for (const name of names) {
    if (!HEADER_NAME.test(name)) throw new FlagError(`${given.name} '${given.value}': '${name}' is not a header name; give names separated by commas`);
  }
  return names;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of text.split(',')) {
    if (pair.trim() === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new FlagError(`--labels '${text}' must be KEY=VALUE pairs separated by commas`);
    labels[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return labels;
}

export function parseHostPort(flag: string, text: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:]*):(\d{1,5})$/.exec(text);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || port > 65535) throw new FlagError(`${flag} '${text}' must be HOST:PORT, e.g. 127.0.0.1:8080`);
  const host = (m[1] ?? '').replace(/^\[|\]$/g, '');
  return { host: host === '' ? '0.0.0.0' : host, port };
}

function defaultIntermediaryId(): string {
  const host = os.hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 50);
  return `fhirmesh-${host === '' ? 'proxy' : host}`;
}
