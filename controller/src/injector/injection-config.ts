// What the injector puts into a pod, as the chart renders it (a JSON file, --injector-config): the
// proxy image, where the controller is, the chart's defaults for ports, resources and log level.
// Checked once at start so a bad chart value stops the controller with one line, not every pod.

import fs from 'node:fs';
import { isQuantity } from './internal/quantity.ts';

export interface InjectionConfig {
  /** The proxy image: the controller's own image in the chart. */
  image: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** host:port of the controller's gRPC Service, as the proxy's --controller. */
  controllerAddress: string;
  /**
   * TLS to the controller: the name its certificate carries and the CA file (the controller's own
   * mounted ca.crt) whose PEM goes into each sidecar. Absent: the controller serves plaintext.
   */
  controllerTls?: { serverName: string; caFile: string };
  defaults: ProxyDefaults;
  /** The projected token's lifetime; the kubelet renews it at 80 %. */
  tokenExpirationSeconds: number;
}

/** Per pod, each can be changed by an annotation (see pod-injection.ts). */
export interface ProxyDefaults {
  /** The sidecar's listener, on 127.0.0.1: the pod's own containers only. */
  proxyPort: number;
  /** /healthz /readyz /metrics on the pod IP (probes, Prometheus); /debug answers loopback only. */
  adminPort: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  resources: { requests: { cpu?: string; memory?: string }; limits: { cpu?: string; memory?: string } };
}

export class InjectionConfigError extends Error {}

export function loadInjectionConfig(file: string): InjectionConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new InjectionConfigError(`--injector-config '${file}' cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InjectionConfigError(`--injector-config '${file}' is not JSON: ${(err as Error).message}`);
  }
  return checkInjectionConfig(json, `--injector-config '${file}'`);
}

export function checkInjectionConfig(json: unknown, origin: string): InjectionConfig {
  const fail = (what: string): never => {
    throw new InjectionConfigError(`${origin}: ${what}`);
  };
  const c = json as Partial<InjectionConfig> | null;
  if (typeof c !== 'object' || c === null) fail('must be a JSON object');
  const config = c as Partial<InjectionConfig>;
  if (typeof config.image !== 'string' || config.image === '') fail('image must name the proxy image');
  if (config.imagePullPolicy !== 'Always' && config.imagePullPolicy !== 'IfNotPresent' && config.imagePullPolicy !== 'Never') {
    fail('imagePullPolicy must be Always, IfNotPresent or Never');
  }
  if (typeof config.controllerAddress !== 'string' || !/^[^\s:]+:\d{1,5}$/.test(config.controllerAddress)) {
    fail('controllerAddress must be HOST:PORT of the controller Service');
  }
  if (config.controllerTls !== undefined) {
    const t = config.controllerTls;
    if (typeof t.serverName !== 'string' || t.serverName === '' || typeof t.caFile !== 'string' || t.caFile === '') {
      fail('controllerTls needs serverName and caFile');
    }
  }
  const d = config.defaults;
  if (d === undefined || typeof d !== 'object') return fail('defaults is missing');
  for (const key of ['proxyPort', 'adminPort'] as const) {
    if (!isPort(d[key])) fail(`defaults.${key} must be a port number from 1 to 65535`);
  }
  if (d.proxyPort === d.adminPort) fail('defaults.proxyPort and defaults.adminPort must differ');
  if (!['debug', 'info', 'warn', 'error'].includes(d.logLevel)) fail('defaults.logLevel must be debug, info, warn or error');
  for (const kind of ['requests', 'limits'] as const) {
    const section = d.resources?.[kind];
    if (section === undefined || typeof section !== 'object') fail(`defaults.resources.${kind} must be an object`);
    for (const [name, value] of Object.entries(section)) {
      if ((name !== 'cpu' && name !== 'memory') || typeof value !== 'string' || !isQuantity(value)) {
        fail(`defaults.resources.${kind}.${name} must be cpu or memory with a Kubernetes quantity such as 100m or 128Mi`);
      }
    }
  }
  const ttl = config.tokenExpirationSeconds;
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 600) fail('tokenExpirationSeconds must be a whole number of seconds, at least 600 (the apiserver minimum)');
  return config as InjectionConfig;
}

export function isPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535;
}
