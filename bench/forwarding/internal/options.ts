// Command-line flags of bench/forwarding/run.ts. Bad values stop the run at once with one
// line that says what to pass instead.
import { parseArgs } from 'node:util';
import { ENGINE_NAMES, UNDICI_APIS } from './messages.ts';
import type { EngineName, UndiciApi } from './messages.ts';
import { SCENARIOS } from './scenarios.ts';
import type { Scenario } from './scenarios.ts';

export type TargetName = 'direct' | EngineName;
/** The order every round runs them in. */
export const TARGET_NAMES: readonly TargetName[] = ['direct', ...ENGINE_NAMES];

export interface BenchOptions {
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly rounds: number;
  readonly scenarios: readonly Scenario[];
  readonly targets: readonly TargetName[];
  readonly undiciApi: UndiciApi;
  readonly loadCostSamples: number;
  readonly outputPath: string;
  /** Each measurement first waits (up to quietMaxWaitMs) for other work to drop below this. */
  readonly quietBelowCores: number;
  readonly quietMaxWaitMs: number;
  /** A window in which other processes used more CPU than this (cores) is measured again. */
  readonly maxOtherCpuCores: number;
  readonly attempts: number;
  /** Extra Node flags for the forwarder processes only, e.g. --max-semi-space-size=16. */
  readonly forwarderNodeOptions: readonly string[];
}

export const USAGE = `usage: node bench/forwarding/run.ts [--duration 10] [--warmup 2] [--rounds 1]
  [--scenarios ${SCENARIOS.map((scenario) => scenario.name).join(',')}]
  [--targets ${TARGET_NAMES.join(',')}] [--undici-api ${UNDICI_APIS.join('|')}]
  [--load-cost-samples 5] [--out bench/results/forwarding.json]
  [--quiet-below 0.1] [--quiet-max-wait 120] [--max-other-load 0.2] [--attempts 3]
  [--forwarder-node-options '--max-semi-space-size=16']`;

export class OptionsError extends Error {}

function positiveNumber(flag: string, text: string | undefined, fallback: number, integer: boolean): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new OptionsError(`--${flag} must be a positive ${integer ? 'integer' : 'number'}, got '${text}'`);
  }
  return value;
}

function pickList<T extends string>(flag: string, text: string | undefined, known: readonly T[]): T[] {
  if (text === undefined) return [...known];
  const picked = text.split(',').map((item) => item.trim());
  for (const item of picked) {
    if (!(known as readonly string[]).includes(item)) throw new OptionsError(`--${flag}: unknown '${item}'; choose from ${known.join(', ')}`);
  }
  // Keep the canonical order whatever order was typed: runs are always in the same sequence.
  return known.filter((item) => picked.includes(item));
}

export function parseOptions(argv: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      duration: { type: 'string' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      scenarios: { type: 'string' },
      targets: { type: 'string' },
      'undici-api': { type: 'string' },
      'load-cost-samples': { type: 'string' },
      out: { type: 'string' },
      'quiet-below': { type: 'string' },
      'quiet-max-wait': { type: 'string' },
      'max-other-load': { type: 'string' },
      attempts: { type: 'string' },
      'forwarder-node-options': { type: 'string' },
    },
  });
  // dispatch: as fast as stream() or faster, and its young generation stays smaller (see
  // docs/performance.md); stream() is kept to check that on other machines.
  const undiciApi = values['undici-api'] ?? 'dispatch';
  if (!(UNDICI_APIS as readonly string[]).includes(undiciApi)) throw new OptionsError(`--undici-api must be one of ${UNDICI_APIS.join(', ')}, got '${undiciApi}'`);
  const scenarioNames = pickList('scenarios', values.scenarios, SCENARIOS.map((scenario) => scenario.name));
  return {
    durationMs: positiveNumber('duration', values.duration, 10, false) * 1000,
    warmupMs: positiveNumber('warmup', values.warmup, 2, false) * 1000,
    rounds: positiveNumber('rounds', values.rounds, 1, true),
    scenarios: SCENARIOS.filter((scenario) => scenarioNames.includes(scenario.name)),
    targets: pickList('targets', values.targets, TARGET_NAMES),
    undiciApi: undiciApi as UndiciApi,
    loadCostSamples: positiveNumber('load-cost-samples', values['load-cost-samples'], 5, true),
    outputPath: values.out ?? 'bench/results/forwarding.json',
    quietBelowCores: positiveNumber('quiet-below', values['quiet-below'], 0.1, false),
    quietMaxWaitMs: positiveNumber('quiet-max-wait', values['quiet-max-wait'], 120, false) * 1000,
    maxOtherCpuCores: positiveNumber('max-other-load', values['max-other-load'], 0.2, false),
    attempts: positiveNumber('attempts', values.attempts, 3, true),
    forwarderNodeOptions: (values['forwarder-node-options'] ?? '').split(' ').filter((flag) => flag !== ''),
  };
}
