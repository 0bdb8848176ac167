// The sidecar injection itself, pure: a Pod as the apiserver sends it in, the JSON patch (RFC 6902)
// that adds the proxy out. A pod it cannot understand is never blocked: it is admitted unchanged
// with a warning that says what to fix. A pod that already has the proxy is left alone.

import type { InjectionConfig, ProxyDefaults } from './injection-config.ts';
import { isPort } from './injection-config.ts';
import { parseQuantity } from './internal/quantity.ts';

export const PROXY_CONTAINER_NAME = 'fhirmesh-proxy';
/** Label on a namespace or a pod: `enabled` opts in, `disabled` on a pod opts it out (the webhook's selectors). */
export const INJECT_LABEL = 'fhirmesh.io/inject';
/** Label set on every injected pod: selects them for a PodMonitor, and for people. */
export const INJECTED_LABEL = 'fhirmesh.io/injected';
/** The environment variable each app container gets: where its proxy listens. */
export const PROXY_URL_ENV = 'FHIRMESH_PROXY_URL';

/** Per-pod settings, each overriding the chart's default of the same meaning. */
export const PROXY_ANNOTATIONS = {
  proxyPort: 'fhirmesh.io/proxy-port',
  adminPort: 'fhirmesh.io/proxy-admin-port',
  logLevel: 'fhirmesh.io/proxy-log-level',
  cpuRequest: 'fhirmesh.io/proxy-cpu-request',
  cpuLimit: 'fhirmesh.io/proxy-cpu-limit',
  memoryRequest: 'fhirmesh.io/proxy-memory-request',
  memoryLimit: 'fhirmesh.io/proxy-memory-limit',
} as const;

const TOKEN_VOLUME = 'fhirmesh-token';
const STATE_VOLUME = 'fhirmesh-state';
const TOKEN_DIR = '/var/run/secrets/fhirmesh';
const STATE_DIR = '/var/lib/fhirmesh';
/** The image's numeric user: runAsNonRoot needs a number to check. */
const PROXY_UID = 65532;

export interface JsonPatchOperation {
  op: 'add';
  path: string;
  value: unknown;
}

export type InjectionResult =
  /** The patch adds the proxy; warnings (e.g. an unknown fhirmesh.io/proxy-* annotation) go back to the client. */
  | { kind: 'injected'; patch: JsonPatchOperation[]; warnings: string[] }
  /** Nothing to do, on purpose: the proxy is there already, or the pod opted out. */
  | { kind: 'unchanged'; reason: string }
  /** Admitted unchanged because the pod cannot take the proxy as asked; the warning says why and what to do. */
  | { kind: 'refused'; warning: string };

interface Container {
  name: string;
  ports?: { containerPort?: unknown }[];
  env?: { name?: unknown }[];
}

interface PodShape {
  metadata: { name?: string; generateName?: string; namespace?: string; labels?: Record<string, unknown>; annotations?: Record<string, unknown> };
  spec: { containers: Container[]; initContainers?: Container[]; volumes?: { name?: unknown }[]; hostNetwork?: unknown };
}

/**
 * @param caPem the CA of the controller's certificate (put into the sidecar's environment), or
 *   undefined when the controller serves plaintext (config.controllerTls absent).
 */
export function injectProxy(object: unknown, config: InjectionConfig, caPem: string | undefined): InjectionResult {
  const shape = podShape(object);
  if (typeof shape === 'string') return { kind: 'refused', warning: `fhirmesh: not injected: ${shape}` };
  const { metadata, spec } = shape;
  const refuse = (why: string): InjectionResult => ({ kind: 'refused', warning: `fhirmesh: ${PROXY_CONTAINER_NAME} not injected: ${why}` });

  const all = [...(spec.initContainers ?? []), ...spec.containers];
  if (all.some((c) => c.name === PROXY_CONTAINER_NAME)) return { kind: 'unchanged', reason: `it already has a container named ${PROXY_CONTAINER_NAME}` };
  if (metadata.labels?.[INJECT_LABEL] === 'disabled') return { kind: 'unchanged', reason: `the pod is labelled ${INJECT_LABEL}=disabled` };
  if (spec.hostNetwork === true) {
    return refuse('the pod uses hostNetwork, where the proxy ports would clash with every other such pod on the node; label it fhirmesh.io/inject=disabled');
  }

  const settings = settingsOf(metadata.annotations ?? {}, config.defaults);
  if (typeof settings === 'string') return refuse(settings);
  const usedPorts = new Set(all.flatMap((c) => (c.ports ?? []).map((p) => p.containerPort)));
  for (const [port, annotation] of [
    [settings.proxyPort, PROXY_ANNOTATIONS.proxyPort],
    [settings.adminPort, PROXY_ANNOTATIONS.adminPort],
  ] as const) {
    if (usedPorts.has(port)) return refuse(`port ${port} is a containerPort of the pod already: set ${annotation} to a free port`);
  }
  const volumeNames = new Set((spec.volumes ?? []).map((v) => v.name));
  for (const name of [TOKEN_VOLUME, STATE_VOLUME]) {
    if (volumeNames.has(name)) return refuse(`the pod already has a volume named ${name}: rename it`);
  }
  if (config.controllerTls !== undefined && caPem === undefined) {
    return refuse(`the controller's CA (${config.controllerTls.caFile}) cannot be read, so the proxy could not trust the controller; check the grpc.tls Secret has ca.crt`);
  }

  const patch: JsonPatchOperation[] = [];
  if (metadata.labels === undefined) patch.push({ op: 'add', path: '/metadata/labels', value: { [INJECTED_LABEL]: 'true' } });
  else if (metadata.labels[INJECTED_LABEL] !== 'true') patch.push({ op: 'add', path: `/metadata/labels/${pointerToken(INJECTED_LABEL)}`, value: 'true' });

  // First of the init containers: with restartPolicy Always it is a native sidecar, started (and
  // ready, by its startup probe) before later init containers and the app, stopped after them.
  const sidecar = proxyContainer(config, settings, caPem);
  if (spec.initContainers === undefined) patch.push({ op: 'add', path: '/spec/initContainers', value: [sidecar] });
  else patch.push({ op: 'add', path: '/spec/initContainers/0', value: sidecar });

  const volumes = [
    {
      name: TOKEN_VOLUME,
      projected: { sources: [{ serviceAccountToken: { audience: 'fhirmesh', expirationSeconds: config.tokenExpirationSeconds, path: 'token' } }] },
    },
    // The last good route table, so a restarted proxy serves while the controller is away.
    { name: STATE_VOLUME, emptyDir: { sizeLimit: '16Mi' } },
  ];
  if (spec.volumes === undefined) patch.push({ op: 'add', path: '/spec/volumes', value: volumes });
  else for (const volume of volumes) patch.push({ op: 'add', path: '/spec/volumes/-', value: volume });

  const proxyUrl = { name: PROXY_URL_ENV, value: `http://127.0.0.1:${settings.proxyPort}` };
  spec.containers.forEach((container, index) => {
    if (container.env === undefined) patch.push({ op: 'add', path: `/spec/containers/${index}/env`, value: [proxyUrl] });
    else if (!container.env.some((e) => e.name === PROXY_URL_ENV)) patch.push({ op: 'add', path: `/spec/containers/${index}/env/-`, value: proxyUrl });
  });
  return { kind: 'injected', patch, warnings: settings.warnings };
}

interface ProxySettings extends ProxyDefaults {
  warnings: string[];
}

/** The chart's defaults with the pod's annotations applied, or why the annotations cannot be used. */
function settingsOf(annotations: Record<string, unknown>, defaults: ProxyDefaults): ProxySettings | string {
  const known = new Set<string>(Object.values(PROXY_ANNOTATIONS));
  const warnings = Object.keys(annotations)
    .filter((key) => key.startsWith('fhirmesh.io/proxy-') && !known.has(key))
    .sort()
    .map((key) => `fhirmesh: annotation ${key} is not one fhirmesh reads (ignored); known: ${[...known].join(', ')}`);
  const text = (key: string): string | undefined => {
    const value = annotations[key];
    return typeof value === 'string' ? value.trim() : undefined;
  };

  const port = (key: string, fallback: number): number | string => {
    const value = text(key);
    if (value === undefined) return fallback;
    const n = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
    return isPort(n) ? n : `${key} '${value}' must be a port number from 1 to 65535`;
  };
  const proxyPort = port(PROXY_ANNOTATIONS.proxyPort, defaults.proxyPort);
  if (typeof proxyPort === 'string') return proxyPort;
  const adminPort = port(PROXY_ANNOTATIONS.adminPort, defaults.adminPort);
  if (typeof adminPort === 'string') return adminPort;
  if (proxyPort === adminPort) return `${PROXY_ANNOTATIONS.proxyPort} and ${PROXY_ANNOTATIONS.adminPort} are both ${proxyPort}: they must differ`;

  const logLevel = text(PROXY_ANNOTATIONS.logLevel) ?? defaults.logLevel;
  if (logLevel !== 'debug' && logLevel !== 'info' && logLevel !== 'warn' && logLevel !== 'error') {
    return `${PROXY_ANNOTATIONS.logLevel} '${logLevel}' must be debug, info, warn or error`;
  }

  const requests = { ...defaults.resources.requests };
  const limits = { ...defaults.resources.limits };
  for (const [resource, target, key] of [
    ['cpu', requests, PROXY_ANNOTATIONS.cpuRequest],
    ['cpu', limits, PROXY_ANNOTATIONS.cpuLimit],
    ['memory', requests, PROXY_ANNOTATIONS.memoryRequest],
    ['memory', limits, PROXY_ANNOTATIONS.memoryLimit],
  ] as const) {
    const value = text(key);
    if (value === undefined) continue;
    const amount = parseQuantity(value);
    if (amount === undefined || amount < 0) return `${key} '${value}' must be a Kubernetes quantity such as ${resource === 'cpu' ? '100m or 0.5' : '64Mi or 1Gi'}`;
    target[resource] = value;
  }
  for (const resource of ['cpu', 'memory'] as const) {
    const request = requests[resource];
    const limit = limits[resource];
    if (request !== undefined && limit !== undefined && (parseQuantity(request) ?? 0) > (parseQuantity(limit) ?? 0)) {
      return `the proxy's ${resource} request ${request} exceeds its limit ${limit}, which the apiserver refuses: adjust fhirmesh.io/proxy-${resource}-request or -limit`;
    }
  }
  return { proxyPort, adminPort, logLevel, resources: { requests, limits }, warnings };
}

function proxyContainer(config: InjectionConfig, settings: ProxySettings, caPem: string | undefined): Record<string, unknown> {
  const tls = config.controllerTls;
  const probe = (path: string): Record<string, unknown> => ({ httpGet: { path, port: settings.adminPort } });
  const resources: Record<string, unknown> = {};
  if (Object.keys(settings.resources.requests).length > 0) resources.requests = settings.resources.requests;
  if (Object.keys(settings.resources.limits).length > 0) resources.limits = settings.resources.limits;
  return {
    name: PROXY_CONTAINER_NAME,
    image: config.image,
    imagePullPolicy: config.imagePullPolicy,
    restartPolicy: 'Always',
    command: ['fhirmesh-proxy'],
    args: [
      `--controller=${config.controllerAddress}`,
      ...(tls === undefined ? [] : [`--controller-server-name=${tls.serverName}`]),
      `--token-file=${TOKEN_DIR}/token`,
      `--state-dir=${STATE_DIR}`,
      // Loopback: only the pod's own containers send through it.
      `--listen=127.0.0.1:${settings.proxyPort}`,
      `--admin-listen=0.0.0.0:${settings.adminPort}`,
      `--log-level=${settings.logLevel}`,
    ],
    env: [
      // Identity from the downward API: the node id and the namespace it claims (the token proves it).
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      ...(caPem === undefined ? [] : [{ name: 'FHIRMESH_CONTROLLER_CA_PEM', value: caPem }]),
    ],
    ports: [{ name: 'fhirmesh-admin', containerPort: settings.adminPort, protocol: 'TCP' }],
    // Ready means a route table is loaded: the app starts only then. Two minutes for the controller
    // to answer; after that the kubelet restarts the proxy and the pod keeps waiting.
    startupProbe: { ...probe('/readyz'), periodSeconds: 1, failureThreshold: 120 },
    readinessProbe: { ...probe('/readyz'), periodSeconds: 5 },
    livenessProbe: { ...probe('/healthz'), periodSeconds: 10, failureThreshold: 3 },
    resources,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: PROXY_UID,
      runAsGroup: PROXY_UID,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    terminationMessagePolicy: 'FallbackToLogsOnError',
    volumeMounts: [
      { name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true },
      { name: STATE_VOLUME, mountPath: STATE_DIR },
    ],
  };
}

/** The parts of a Pod the injection reads, checked; a string says what is missing. */
function podShape(object: unknown): PodShape | string {
  if (!isObject(object)) return 'the request carries no object';
  if (object.kind !== undefined && object.kind !== 'Pod') return `the object is a ${JSON.stringify(object.kind)}, not a Pod`;
  const metadata = object.metadata ?? {};
  if (!isObject(metadata)) return 'the pod has no metadata object';
  for (const key of ['labels', 'annotations'] as const) {
    if (metadata[key] !== undefined && !isObject(metadata[key])) return `metadata.${key} is not an object`;
  }
  const spec = object.spec;
  if (!isObject(spec)) return 'the pod has no spec';
  if (!Array.isArray(spec.containers) || spec.containers.length === 0) return 'the pod spec has no containers';
  for (const key of ['containers', 'initContainers'] as const) {
    const list = spec[key];
    if (list === undefined) continue;
    if (!Array.isArray(list)) return `spec.${key} is not a list`;
    for (const c of list as unknown[]) {
      if (!isObject(c) || typeof c.name !== 'string') return `an entry of spec.${key} has no name`;
      if (c.ports !== undefined && !Array.isArray(c.ports)) return `spec.${key}[${c.name}].ports is not a list`;
      if (c.env !== undefined && !Array.isArray(c.env)) return `spec.${key}[${c.name}].env is not a list`;
    }
  }
  if (spec.volumes !== undefined && !Array.isArray(spec.volumes)) return 'spec.volumes is not a list';
  return { metadata, spec } as unknown as PodShape;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One reference token of a JSON pointer (RFC 6901): ~ and / escaped. */
function pointerToken(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}
