// The controller's --injector-* flags: all four serve the sidecar injection webhook, none leaves it
// off. Kept here so the controller's flags.ts only spreads them in.

import type { InjectorServeConfig } from './injection-server.ts';

export const INJECTOR_FLAG_OPTIONS = {
  'injector-listen': { type: 'string' },
  'injector-tls-cert': { type: 'string' },
  'injector-tls-key': { type: 'string' },
  'injector-config': { type: 'string' },
} as const;

export const INJECTOR_USAGE = `  --injector-listen HOST:PORT  serve the sidecar injection webhook (POST /inject) over HTTPS, with
  --injector-tls-cert FILE     its serving certificate (PEM; re-read when it changes),
  --injector-tls-key FILE      its private key, and
  --injector-config FILE       what to inject: image, controller address, defaults (the chart renders it)
`;

type InjectorFlagValues = Partial<Record<keyof typeof INJECTOR_FLAG_OPTIONS, string | boolean>>;

/** The webhook's settings, or undefined when no --injector-* flag is given; a partial set is refused. */
export function injectorServeConfigOf(
  values: InjectorFlagValues,
  parseHostPort: (flag: string, text: string) => { host: string; port: number },
  fail: (message: string) => never,
): InjectorServeConfig | undefined {
  const names = Object.keys(INJECTOR_FLAG_OPTIONS) as (keyof typeof INJECTOR_FLAG_OPTIONS)[];
  const given = names.filter((name) => values[name] !== undefined);
  if (given.length === 0) return undefined;
  const missing = names.filter((name) => typeof values[name] !== 'string' || values[name] === '');
  if (missing.length > 0) {
    fail(`the injection webhook needs ${names.map((n) => `--${n}`).join(', ')} together; missing or empty: ${missing.map((n) => `--${n}`).join(', ')}`);
  }
  const text = (name: keyof typeof INJECTOR_FLAG_OPTIONS): string => String(values[name]);
  return {
    listen: parseHostPort('--injector-listen', text('injector-listen')),
    tlsCertFile: text('injector-tls-cert'),
    tlsKeyFile: text('injector-tls-key'),
    configFile: text('injector-config'),
  };
}
