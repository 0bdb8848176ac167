// Evaluates the CRD's own x-kubernetes-validations CEL rules with @marcbachmann/cel-js, so a routes file
// and the apiserver judge a route by the same text. Walks the object the way the apiserver does.
import { Environment } from '@marcbachmann/cel-js';
import type { CelRule, CrdSchema } from './schema.ts';

/** A rule that failed, where the apiserver reports it: the node's path plus the rule's fieldPath. */
export interface CelRuleFailure {
  path: string;
  message: string;
}

interface CompiledRule {
  holds: (self: unknown) => boolean;
  message: (self: unknown) => string;
  fieldPath: string;
}

// Every rule sees `self` as dyn: the apiserver types it from the schema, which the walk has already
// checked (rules run only when no blocking schema error was found, as in the apiserver).
const environment = new Environment().registerVariable('self', 'dyn');
const compiledRules = new WeakMap<CelRule, CompiledRule>();

/**
 * Every CEL rule of `schema` that `obj` breaks. A rule that fails to evaluate (say, duration() on a
 * value out of range) is a refusal, as in the apiserver, reported with the rule's own message.
 */
export function celRuleFailures(schema: CrdSchema, obj: unknown): CelRuleFailure[] {
  const failures: CelRuleFailure[] = [];
  walk(schema, obj, '', failures);
  return failures;
}

/** Compiles every rule of `schema` (and its messageExpressions); throws, naming the rule, on one the library cannot run. */
export function compileCelRules(schema: CrdSchema): void {
  for (const rule of schema['x-kubernetes-validations'] ?? []) compiled(rule);
  for (const property of Object.values(schema.properties ?? {})) compileCelRules(property);
  if (schema.items !== undefined) compileCelRules(schema.items);
}

function walk(schema: CrdSchema, value: unknown, path: string, failures: CelRuleFailure[]): void {
  // The apiserver prunes nulls before validating, so a null field is an absent one: no rules run on it.
  if (value === undefined || value === null) return;
  const rules = schema['x-kubernetes-validations'] ?? [];
  if (rules.length > 0) {
    const self = celValue(schema, value);
    for (const rule of rules) {
      const { holds, message, fieldPath } = compiled(rule);
      if (!holds(self)) failures.push({ path: path + fieldPath, message: message(self) });
    }
  }
  if (schema.properties !== undefined && isFields(value)) {
    for (const [name, property] of Object.entries(schema.properties)) {
      walk(property, value[name], path === '' ? name : `${path}.${name}`, failures);
    }
  }
  if (schema.items !== undefined && Array.isArray(value)) {
    const items = schema.items;
    value.forEach((item, index) => walk(items, item, `${path}[${index}]`, failures));
  }
}

function compiled(rule: CelRule): CompiledRule {
  let entry = compiledRules.get(rule);
  if (entry === undefined) {
    const holds = program(rule.rule, 'bool', rule);
    const messageExpression = rule.messageExpression === undefined ? undefined : program(rule.messageExpression, 'string', rule);
    // The apiserver's fallbacks: message when messageExpression fails or says nothing, and its own words when neither is given.
    const fallback = rule.message ?? `failed rule: ${rule.rule}`;
    entry = {
      holds: (self) => {
        try {
          return holds(self) === true;
        } catch {
          return false;
        }
      },
      message: (self) => {
        if (messageExpression === undefined) return fallback;
        try {
          const text = messageExpression(self);
          return typeof text === 'string' && text.trim() !== '' && !text.includes('\n') ? text : fallback;
        } catch {
          return fallback;
        }
      },
      fieldPath: rule.fieldPath ?? '',
    };
    compiledRules.set(rule, entry);
  }
  return entry;
}

function program(expression: string, type: 'bool' | 'string', rule: CelRule): (self: unknown) => unknown {
  // A rule this library cannot run is a defect of this package's CRD, not of a user's route: fail loudly.
  const fail = (why: string): Error => new Error(`the CRD's CEL rule ${JSON.stringify(rule.rule)} cannot be evaluated here: ${why}`);
  let parsed;
  try {
    parsed = environment.parse(expression);
  } catch (err) {
    throw fail((err as Error).message.split('\n', 1)[0] ?? '');
  }
  const checked = parsed.check();
  if (!checked.valid) throw fail(checked.error?.message.split('\n', 1)[0] ?? 'it does not type-check');
  if (checked.type !== type && checked.type !== 'dyn') throw fail(`${JSON.stringify(expression)} gives ${checked.type}, not ${type}`);
  return (self) => parsed({ self }) as unknown;
}

/** The value as CEL sees it: integers as int (bigint), nulls pruned as the apiserver prunes them. */
function celValue(schema: CrdSchema | undefined, value: unknown): unknown {
  if (schema?.type === 'integer' && typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (Array.isArray(value)) return value.map((item) => celValue(schema?.items, item));
  if (isFields(value)) {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, field]) => field !== null && field !== undefined)
        .map(([name, field]) => [name, celValue(schema?.properties?.[name], field)]),
    );
  }
  return value;
}

function isFields(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
