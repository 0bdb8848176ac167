// Judges one FhirRoute as the apiserver would, from the CRD file itself: its schema (ajv), its CEL rules
// (cel-rules.ts), and what no CRD rule says (base URLs that the proxy's URL parser can read).
import type { ErrorObject } from 'ajv';
import { celRuleFailures } from './cel-rules.ts';
import { DURATION_PATTERN } from './duration.ts';
import { fhirRouteCrdSchema, fhirRouteSchemaErrors } from './schema.ts';

export interface RouteProblem {
  /** Where, as in kubectl's messages: `spec.backend.url`, `spec.rules[0].match`; '' is the whole object. */
  path: string;
  /** What is wrong and what to do about it. */
  message: string;
}

/** Every problem of a FhirRoute manifest; empty when the route is valid. */
export function validateFhirRoute(obj: unknown): RouteProblem[] {
  const schemaErrors = fhirRouteSchemaErrors(obj);
  // As in the apiserver, the CEL rules run only on an object whose values have the schema's types and sizes.
  const blocked = schemaErrors.some((e) => BLOCKING_KEYWORDS.has(e.keyword));
  return [
    ...schemaProblems(schemaErrors),
    ...(blocked ? [] : celRuleFailures(fhirRouteCrdSchema(), obj)),
    ...beyondSchemaProblems(obj),
    ...(blocked ? [RULES_NOT_CHECKED] : []),
  ];
}

/** One line for a problem, for logs, status messages and the CLI. */
export function describeProblem(problem: RouteProblem): string {
  return problem.path === '' ? problem.message : `${problem.path}: ${problem.message}`;
}

// ---- the schema, with ajv's errors put in words a route author can act on ----

const URL_PATTERN = '^https?://[^\\s/?#@]+(/[^\\s?#]*)?$';
const URL_SHAPE = new RegExp(URL_PATTERN);
const URL_EXAMPLE = 'https://fhir.example.org/r4';

/** One hint per pattern in the CRD (a test checks none is missing): says what the value should look like. */
const PATTERN_HINTS: Readonly<Record<string, (value: string) => string>> = {
  '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$': (value) =>
    `${quote(value)} is not a DNS label: use lowercase letters, digits and '-', starting and ending with a letter or digit, e.g. acme-payer`,
  '^[a-z]([-a-z0-9]*[a-z0-9])?$': (value) =>
    `${quote(value)} is not a Service name: use lowercase letters, digits and '-', starting with a letter and ending with a letter or digit`,
  '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$': (value) =>
    `${quote(value)} is not a lowercase DNS name: write it like fhir.acme.example, without port, scheme, wildcard or upper case`,
  [URL_PATTERN]: (value) => urlProblem(value) ?? `is not an absolute http(s) URL: write it like ${URL_EXAMPLE}`,
  '^/[^\\s?#]*$': (value) =>
    `${quote(value)} is not a base path: start it with / and leave out query and fragment, e.g. /fhir/r4`,
  [DURATION_PATTERN]: (value) =>
    `${quote(value)} is not a duration: write a whole number followed by ms, s or m, e.g. 250ms, 2s, 1m`,
  '^\\$[A-Za-z][A-Za-z0-9-]*$': (value) =>
    `${quote(value)} is not an operation name: write it with its $, e.g. $submit`,
  '^[A-Z][A-Za-z]+$': (value) =>
    `${quote(value)} is not a FHIR resource type: write it as FHIR spells it, e.g. ServiceRequest`,
  '^(\\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$': (value) =>
    `${quote(value)} is not a namespace name or "*": use a namespace's name, or "*" for every namespace`,
};

/** The patterns validate.ts can explain, so a test can hold the CRD to them. */
export const EXPLAINED_PATTERNS: readonly string[] = Object.keys(PATTERN_HINTS);

function schemaProblems(errors: readonly ErrorObject[]): RouteProblem[] {
  // A value of the wrong type also fails its enum or pattern; the type is the one thing to fix.
  const wrongType = new Set(errors.filter((e) => e.keyword === 'type').map((e) => e.instancePath));
  return errors
    .filter((e) => e.keyword === 'type' || !wrongType.has(e.instancePath))
    .map((e) => explain(e));
}

function explain(error: ErrorObject): RouteProblem {
  const at = pointerToPath(error.instancePath);
  const data: unknown = error.data;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return { path: child(at, String(params.missingProperty)), message: 'is required' };
    case 'additionalProperties': {
      const field = String(params.additionalProperty);
      const known = Object.keys((error.parentSchema?.properties ?? {}) as object).join(', ');
      const message =
        field === 'true' || field === 'false'
          ? `is not a field here: YAML 1.1 (which kubectl uses) reads the unquoted keys on, off, yes, no, y and n as ${field}; quote the key, e.g. 'yes':`
          : `is not a field here: check the spelling (fields here: ${known})`;
      return { path: child(at, field), message };
    }
    case 'type':
      return { path: at, message: wrongTypeMessage(String(params.type), data) };
    case 'enum':
      return {
        path: at,
        message: `${describe(data)} is not allowed: use one of ${(params.allowedValues as unknown[]).join(', ')}`,
      };
    case 'const':
      return { path: at, message: `must be ${String(params.allowedValue)} (got ${describe(data)})` };
    case 'pattern': {
      const hint = PATTERN_HINTS[String(params.pattern)];
      const text = String(data);
      return { path: at, message: hint ? hint(text) : `${quote(text)} does not match ${String(params.pattern)}` };
    }
    case 'minLength':
      return { path: at, message: 'must not be empty' };
    case 'maxLength':
      return { path: at, message: `is ${String(data).length} characters long; at most ${String(params.limit)} are allowed` };
    case 'minItems':
      return { path: at, message: 'must not be empty: list at least one entry, or leave the field out' };
    case 'maxItems':
      return {
        path: at,
        message: `lists ${(data as unknown[]).length} entries; at most ${String(params.limit)} are allowed`,
      };
    case 'minimum':
      return { path: at, message: `must be at least ${String(params.limit)} (got ${data as number})` };
    case 'maximum':
      return { path: at, message: `must be at most ${String(params.limit)} (got ${data as number})` };
    case 'format':
      return { path: at, message: `${describe(data)} is not an RFC 3339 time such as 2026-01-31T12:00:00Z` };
    case 'x-kubernetes-list-type':
      return {
        path: `${at}[${String(params.index)}]`,
        message:
          params.listType === 'set'
            ? `${describe(params.duplicate)} is listed twice: list each value once`
            : `repeats the ${String(params.duplicate)} of an earlier entry: each entry needs its own`,
      };
    default:
      return { path: at, message: error.message ?? `fails ${error.keyword}` };
  }
}

function wrongTypeMessage(expected: string, data: unknown): string {
  const wanted: Readonly<Record<string, string>> = {
    string: 'a string',
    integer: 'a whole number',
    number: 'a number',
    boolean: 'true or false',
    object: 'a mapping of fields',
    array: 'a list',
  };
  const message = `must be ${wanted[expected] ?? expected}, not ${describe(data)}`;
  // YAML reads 503 or 1.0 as numbers; the schema wants the text, so say how to keep it text.
  return expected === 'string' && typeof data === 'number' ? `${message}: quote it, '${data}'` : message;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return quote(value);
  if (typeof value === 'number' || typeof value === 'boolean') return `the ${typeof value} ${value}`;
  return typeof value === 'object' ? 'a mapping' : typeof value;
}

function quote(text: string): string {
  return JSON.stringify(text);
}

function pointerToPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((segment) => segment.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce((path, segment) => (/^[0-9]+$/.test(segment) ? `${path}[${segment}]` : child(path, segment)), '');
}

function child(path: string, field: string): string {
  return path === '' ? field : `${path}.${field}`;
}

// ---- the CRD's CEL rules (x-kubernetes-validations), evaluated from the CRD itself ----

// The schema errors after which the apiserver runs no CEL rule (hasBlockingErr in apiextensions-apiserver:
// wrong type, missing field, value not in the enum, too long, too many; unknown fields and another
// apiVersion or kind are refused before validation starts). A rule would see a value of the wrong shape.
const BLOCKING_KEYWORDS: ReadonlySet<string> = new Set(['type', 'required', 'enum', 'maxLength', 'maxItems', 'additionalProperties', 'const']);

const RULES_NOT_CHECKED: RouteProblem = {
  path: '',
  message: "the CRD's CEL rules (x-kubernetes-validations) were not checked because of the problems above, as in the apiserver: fix those and validate again",
};

// ---- what the schema cannot say ----

/** Base URLs that fit the CRD pattern but that the proxy's URL parser refuses (a bad port, say). */
function beyondSchemaProblems(obj: unknown): RouteProblem[] {
  const problems: RouteProblem[] = [];
  // Values that fail the schema pattern were already explained there, by the same urlProblem.
  const checkUrl = (path: string, value: unknown): void => {
    if (typeof value !== 'string' || !URL_SHAPE.test(value)) return;
    const message = urlProblem(value);
    if (message !== undefined) problems.push({ path, message });
  };
  const spec = fields(fields(obj).spec);
  checkUrl('spec.publicBaseUrl', spec.publicBaseUrl);
  checkUrl('spec.backend.url', fields(spec.backend).url);
  list(spec.rules).forEach((rule, index) => checkUrl(`spec.rules[${index}].backend.url`, fields(fields(rule).backend).url));
  return problems;
}

/** Why a base URL is unusable, or undefined when it is a plain absolute http(s) URL. */
function urlProblem(value: string): string | undefined {
  if (!/^https?:\/\//.test(value)) return `must start with http:// or https:// (lowercase), e.g. ${URL_EXAMPLE}`;
  if (/\s/.test(value)) return 'contains whitespace: percent-encode it or remove it';
  const authority = value.slice(value.indexOf('//') + 2).split(/[/?#]/, 1)[0] ?? '';
  if (authority.includes('@')) {
    return 'carries credentials (user:password@): remove them; originators\' Authorization passes through untouched, and a client certificate for the backend goes in tls';
  }
  if (authority === '') return `has no host: write it like ${URL_EXAMPLE}`;
  if (value.includes('?')) return 'has a query (?...): remove it; a FHIR base URL has none, and each request brings its own';
  if (value.includes('#')) return 'has a fragment (#...): remove it; a FHIR base URL has none';
  if (!URL.canParse(value)) return `is not a valid URL (check the host and port): write it like ${URL_EXAMPLE}`;
  return undefined;
}

type Fields = Readonly<Record<string, unknown>>;
const fields = (value: unknown): Fields => (isFields(value) ? value : {});
const list = (value: unknown): readonly unknown[] => (Array.isArray(value) ? value : []);

function isFields(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
