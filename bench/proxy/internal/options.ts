// Command-line flags of bench/proxy/run.ts. --quick shrinks every window so the whole run
// takes under a minute (a smoke test of the harness, not figures). Bad values stop the run at
// once with one line that says what to pass instead.
import { parseArgs } from 'node:util';
import { CONTENDER_KINDS, STANDARD_CONTENDERS } from './contenders/contender.ts';
import type { ContenderKind, ContenderSpec } from './contenders/contender.ts';

export type SweepMode = 'file' | 'controller';
export const SWEEP_MODES: readonly SweepMode[] = ['file', 'controller'];

export interface BenchOptions {
  readonly quick: boolean;
  readonly rounds: number;
  /** 0: no warm-up (--quick). */
  readonly warmupSeconds: number;
  readonly durationSeconds: number;
  /** wrk connections at saturation. */
  readonly connections: number;
  readonly rate: number;
  readonly rateConnections: number;
  readonly contenders: readonly ContenderSpec[];
  readonly sweepSizes: readonly number[];
  readonly sweepModes: readonly SweepMode[];
  readonly sweepDurationSeconds: number;
  readonly streamBytes: number;
  /** Time a freshly started contender is left alone before its idle RSS is read. */
  readonly settleMs: number;
  readonly quietBelowCores: number;
  readonly quietMaxWaitMs: number;
  /** A contender whose windows saw more other load than this (cores) is measured again... */
  readonly maxOtherCores: number;
  /** ...up to this many times in all; then the quietest attempt is kept. */
  readonly attempts: number;
  readonly outputPath: string;
}

export const USAGE = `usage: node bench/proxy/run.ts [--quick] [--rounds 3] [--warmup 2] [--duration 10]
  [--connections 32] [--rate 1000] [--rate-connections 16]
  [--contenders ${STANDARD_CONTENDERS.map((spec) => spec.name).join(',')}]
  [--variant 'NAME=KIND:--flag ENV=value ...']...   (KIND: ${CONTENDER_KINDS.join(', ')})
  [--sweep 10,10000,100000] [--sweep-modes file,controller] [--sweep-duration 5]
  [--stream-bytes 1073741824] [--settle 1.5] [--quiet-below 0.1] [--quiet-max-wait 120]
  [--max-other-load 0.2] [--attempts 3] [--out bench/results/proxy.json]

--variant adds a contender: one of the kinds, with extra flags (tokens starting with '-'; a flag
with a value as --flag=value) and environment (NAME=value tokens), e.g. a tracing row for fhirmesh:
  --variant 'tracing=fhirmesh:--no-access-log OTEL_TRACES_EXPORTER=otlp OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318'
A variant named 'tracing' fills the table's tracing row (compared with 'fhirmesh').`;

export class OptionsError extends Error {}

function positiveNumber(flag: string, text: string | undefined, fallback: number, integer: boolean): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new OptionsError(`--${flag} must be a positive ${integer ? 'integer' : 'number'}, got '${text}'`);
  }
  return value;
}

function nonNegativeNumber(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new OptionsError(`--${flag} must be a number >= 0, got '${text}'`);
  return value;
}

export function parseVariant(text: string): ContenderSpec {
  const match = /^([a-z0-9][a-z0-9-]*)=([a-z-]+):(.*)$/s.exec(text);
  if (match === null) throw new OptionsError(`--variant '${text}' must be NAME=KIND:TOKENS, e.g. 'tracing=fhirmesh:--no-access-log OTEL_TRACES_EXPORTER=otlp'`);
  const [, name = '', kind = '', tokens = ''] = match;
  if (!(CONTENDER_KINDS as readonly string[]).includes(kind)) throw new OptionsError(`--variant '${name}': unknown kind '${kind}'; choose from ${CONTENDER_KINDS.join(', ')}`);
  if (kind === 'direct') throw new OptionsError(`--variant '${name}': direct has no process to give flags or environment to`);
  const args: string[] = [];
  const env: Record<string, string> = {};
  for (const token of tokens.split(/\s+/).filter((item) => item !== '')) {
    if (token.startsWith('-')) {
      args.push(token);
      continue;
    }
    const eq = token.indexOf('=');
    if (eq <= 0) throw new OptionsError(`--variant '${name}': '${token}' is neither a flag (-..., with a value as --flag=value) nor NAME=value`);
    env[token.slice(0, eq)] = token.slice(eq + 1);
  }
  return { name, kind: kind as ContenderKind, args, env };
}

function pickContenders(text: string | undefined, variants: readonly ContenderSpec[]): ContenderSpec[] {
  const known = [...STANDARD_CONTENDERS, ...variants];
  for (const variant of variants) {
    if (STANDARD_CONTENDERS.some((spec) => spec.name === variant.name)) throw new OptionsError(`--variant '${variant.name}' has the name of a standard contender; choose another`);
  }
  if (text === undefined) return known;
  const picked = text.split(',').map((item) => item.trim());
  for (const name of picked) {
    if (!known.some((spec) => spec.name === name)) throw new OptionsError(`--contenders: unknown '${name}'; choose from ${known.map((spec) => spec.name).join(', ')}`);
  }
  // direct is every latency figure's baseline and nginx every ratio's: they always run.
  return known.filter((spec) => spec.name === 'direct' || spec.name === 'nginx' || picked.includes(spec.name));
}

function wholeSecondsOrZero(flag: string, text: string | undefined, fallback: number): number {
  const value = nonNegativeNumber(flag, text, fallback);
  if (!Number.isInteger(value)) throw new OptionsError(`--${flag} must be whole seconds (wrk and fortio take no fractions), got '${text}'`);
  return value;
}

function sizes(text: string | undefined, fallback: readonly number[]): number[] {
  if (text === undefined) return [...fallback];
  return text.split(',').map((item) => positiveNumber('sweep', item.trim(), 0, true));
}

function modes(text: string | undefined): SweepMode[] {
  if (text === undefined) return [...SWEEP_MODES];
  if (text === '' || text === 'none') return [];
  const picked = text.split(',').map((item) => item.trim());
  for (const mode of picked) {
    if (!(SWEEP_MODES as readonly string[]).includes(mode)) throw new OptionsError(`--sweep-modes: unknown '${mode}'; choose from ${SWEEP_MODES.join(', ')} (or none)`);
  }
  return SWEEP_MODES.filter((mode) => picked.includes(mode));
}

export function parseOptions(argv: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      quick: { type: 'boolean' },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string' },
      rate: { type: 'string' },
      'rate-connections': { type: 'string' },
      contenders: { type: 'string' },
      variant: { type: 'string', multiple: true },
      sweep: { type: 'string' },
      'sweep-modes': { type: 'string' },
      'sweep-duration': { type: 'string' },
      'stream-bytes': { type: 'string' },
      settle: { type: 'string' },
      'quiet-below': { type: 'string' },
      'quiet-max-wait': { type: 'string' },
      'max-other-load': { type: 'string' },
      attempts: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const quick = values.quick === true;
  const variants = (values.variant ?? []).map(parseVariant);
  // wrk and fortio take whole seconds.
  const seconds = (flag: string, text: string | undefined, fallback: number): number => positiveNumber(flag, text, fallback, true);
  return {
    quick,
    rounds: positiveNumber('rounds', values.rounds, quick ? 1 : 3, true),
    warmupSeconds: wholeSecondsOrZero('warmup', values.warmup, quick ? 0 : 2),
    durationSeconds: seconds('duration', values.duration, quick ? 1 : 10),
    connections: positiveNumber('connections', values.connections, 32, true),
    rate: positiveNumber('rate', values.rate, 1000, false),
    rateConnections: positiveNumber('rate-connections', values['rate-connections'], 16, true),
    contenders: pickContenders(values.contenders, variants),
    sweepSizes: sizes(values.sweep, quick ? [10, 1_000] : [10, 10_000, 100_000]),
    sweepModes: modes(values['sweep-modes']),
    sweepDurationSeconds: seconds('sweep-duration', values['sweep-duration'], quick ? 1 : 5),
    streamBytes: positiveNumber('stream-bytes', values['stream-bytes'], quick ? 64 * 1024 * 1024 : 1024 * 1024 * 1024, true),
    settleMs: nonNegativeNumber('settle', values.settle, quick ? 0.3 : 1.5) * 1000,
    quietBelowCores: positiveNumber('quiet-below', values['quiet-below'], 0.1, false),
    quietMaxWaitMs: nonNegativeNumber('quiet-max-wait', values['quiet-max-wait'], quick ? 0 : 120) * 1000,
    maxOtherCores: positiveNumber('max-other-load', values['max-other-load'], 0.2, false),
    attempts: positiveNumber('attempts', values.attempts, quick ? 1 : 3, true),
    outputPath: values.out ?? (quick ? 'bench/results/proxy-quick.json' : 'bench/results/proxy.json'),
  };
}
