// Pins that the CRD's own CEL rules, evaluated by the library from the CRD file, refuse every manifest
// of the shared violation table (the cluster test sends the same table to a real apiserver) at the
// apiserver's path and in the rule's words, and accept valid routes.
import { describe, expect, it } from 'vitest';
import { DEFAULTS, validateFhirRoute } from '../../../api/index.ts';
import { celRuleFailures, compileCelRules } from '../../../api/fhirroute/cel-rules.ts';
import { fhirRouteCrdSchema, type CelRule, type CrdSchema } from '../../../api/fhirroute/schema.ts';
import { CEL_VIOLATIONS } from './cel-rule-violations.ts';
import { rawRoute, route } from './route-fixtures.ts';

interface PlacedRule extends CelRule {
  schemaPath: string;
}

function celRulesOf(schema: CrdSchema, at: string): PlacedRule[] {
  const here = (schema['x-kubernetes-validations'] ?? []).map((rule) => ({ ...rule, schemaPath: at }));
  const below = Object.entries(schema.properties ?? {}).flatMap(([name, property]) =>
    celRulesOf(property, at === '' ? name : `${at}.${name}`),
  );
  const items = schema.items === undefined ? [] : celRulesOf(schema.items, `${at}[]`);
  return [...here, ...below, ...items];
}

const crdRules = celRulesOf(fhirRouteCrdSchema(), '');
const TIMER_LIMIT = 'is longer than a timer can count (about 24 days): use a shorter duration';
const RULES_NOT_CHECKED =
  "the CRD's CEL rules (x-kubernetes-validations) were not checked because of the problems above, as in the apiserver: fix those and validate again";

describe("the CRD's CEL rules, evaluated by the library", () => {
  it('compiles every rule of the CRD, each with a message that says what to do', () => {
    expect(() => compileCelRules(fhirRouteCrdSchema())).not.toThrow();
    expect(crdRules.filter((rule) => !/[:;] /.test(rule.message ?? ''))).toEqual([]);
  });

  it('has one violating example for each rule at each place it sits, and no example for a rule that is gone', () => {
    const inCrd = crdRules.map((r) => `${r.schemaPath} | ${r.message}`).sort();
    const inTable = CEL_VIOLATIONS.map((v) => `${v.schemaPath} | ${v.message}`).sort();
    expect(inTable).toEqual(inCrd);
  });

  it.each(crdRules)('reports the rule on $schemaPath at the place its fieldPath names: $message', (rule) => {
    const violation = CEL_VIOLATIONS.find((v) => v.schemaPath === rule.schemaPath && v.message === rule.message);
    const expectedPath = rule.schemaPath.replaceAll('[]', '[0]') + (rule.fieldPath ?? '');
    expect(violation?.path).toBe(expectedPath);
  });

  it.each(CEL_VIOLATIONS)('refuses $path with exactly the CEL message: $message', (violation) => {
    expect(validateFhirRoute(violation.manifest)).toEqual([{ path: violation.path, message: violation.message }]);
  });

  it('accepts valid routes, the smallest and one that sets every field a rule reads', () => {
    expect(validateFhirRoute(route())).toEqual([]);
    const full = route({
      destination: 'metadata',
      addressing: { header: true, pathSegment: false, hosts: ['acme-payer.gw.example.org'], queryParameter: true },
      publicBaseUrl: 'https://gw.example.org/acme-payer',
      backend: { url: 'https://fhir.acme.internal/r4', tls: { caFile: 'ca.pem', clientCertFile: 'gw.crt', clientKeyFile: 'gw.key' } },
      rules: [
        {
          match: { resourceTypes: ['ServiceRequest'], interactions: ['operation'], operations: ['$submit'] },
          backend: { service: { name: 'labs', port: 8443, scheme: 'https' }, tls: { caSecretRef: 'labs-ca', clientCertSecretRef: 'gw' } },
        },
        { match: { methods: ['POST'] }, backend: { service: { name: 'plain', port: 8080 } } },
      ],
      timeouts: { connect: '1ms', firstByte: '2147483647ms', idle: '35791m' },
      rewriteResponseUrls: true,
      exportTo: ['payers', 'labs'],
    });
    expect(validateFhirRoute(full)).toEqual([]);
  });

  it.each(['1ms', '007s', '2147483s', '35791m'])('accepts the timeout %s', (timeout) => {
    expect(validateFhirRoute(rawRoute({ timeouts: { idle: timeout } }))).toEqual([]);
  });

  it.each(['30', '-5s', '1.5s', '2h'])('leaves %s, which the pattern refuses, to the pattern: no duration rule fires', (timeout) => {
    const problems = validateFhirRoute(rawRoute({ timeouts: { idle: timeout } }));
    expect(problems).toEqual([{ path: 'spec.timeouts.idle', message: expect.stringMatching(/is not a duration/) }]);
  });

  it('refuses a timeout too long for duration() itself, as the apiserver refuses a rule that fails to evaluate', () => {
    expect(validateFhirRoute(rawRoute({ timeouts: { firstByte: '999999999999999m' } }))).toEqual([
      { path: 'spec.timeouts.firstByte', message: TIMER_LIMIT },
    ]);
  });

  it('names the defaults in the zero-timeout messages', () => {
    const zero = validateFhirRoute(rawRoute({ timeouts: { connect: '0ms', firstByte: '000s', idle: '0m' } }));
    expect(zero.map((p) => p.message.match(/default \((\d+)ms\)$/)?.[1])).toEqual(
      [DEFAULTS.connectTimeoutMs, DEFAULTS.firstByteTimeoutMs, DEFAULTS.idleTimeoutMs].map(String),
    );
  });

  // rewriteResponseUrls without publicBaseUrl breaks a CEL rule; each case adds one schema problem.
  const REWRITE_NEEDS_BASE = 'spec.rewriteResponseUrls';
  const withRuleBroken = (spec: Record<string, unknown>, envelope: Record<string, unknown> = {}): unknown => ({
    ...(rawRoute({ rewriteResponseUrls: true, ...spec }) as Record<string, unknown>),
    ...envelope,
  });

  it.each([
    ['a wrong type', withRuleBroken({ addressing: { header: 'yes', pathSegment: true } })],
    ['a missing required field', withRuleBroken({ backend: { service: { name: 'fhir' } } })],
    ['a value outside the enum', withRuleBroken({ allow: { methods: ['FETCH'] } })],
    ['a string over maxLength', withRuleBroken({ destination: 'a'.repeat(64) })],
    ['a list over maxItems', withRuleBroken({ addressing: { hosts: Array.from({ length: 17 }, (_, i) => `h${i}.example.org`) } })],
    ['an unknown field', withRuleBroken({ retries: { bogus: 1 } })],
    ['another kind', withRuleBroken({}, { kind: 'Service' })],
  ])('after %s runs no CEL rule, as the apiserver does, and says so', (_case, manifest) => {
    const problems = validateFhirRoute(manifest);
    expect(problems.map((p) => p.path)).not.toContain(REWRITE_NEEDS_BASE);
    expect(problems.at(-1)).toEqual({ path: '', message: RULES_NOT_CHECKED });
  });

  it.each([
    ['a pattern mismatch', withRuleBroken({ destination: 'Acme' })],
    ['a number under its minimum', withRuleBroken({ retries: { attempts: -1 } })],
    ['an empty list', withRuleBroken({ allow: { methods: [] } })],
    ['an empty string', withRuleBroken({ backend: { url: 'https://fhir.acme.internal/r4', tls: { caFile: '' } } })],
    ['a set listing a value twice', withRuleBroken({ allow: { methods: ['GET', 'GET'] } })],
  ])('after %s still runs the CEL rules, as the apiserver does', (_case, manifest) => {
    const problems = validateFhirRoute(manifest);
    expect(problems).toHaveLength(2);
    expect(problems[1]?.path).toBe(REWRITE_NEEDS_BASE);
  });
});

describe('celRuleFailures', () => {
  const schema = (rules: CelRule[], properties: Record<string, CrdSchema> = {}): CrdSchema => ({
    type: 'object',
    properties: { spec: { type: 'object', 'x-kubernetes-validations': rules, properties } },
  });

  it('uses messageExpression, and falls back to message, then to the rule, as the apiserver does', () => {
    const rules: CelRule[] = [
      { rule: 'self.n < 3', messageExpression: "'n is ' + string(self.n) + ': use less than 3'", message: 'unused' },
      { rule: 'self.n < 2', messageExpression: 'self.missing', message: 'n must be below 2' },
      { rule: 'self.n < 1' },
    ];
    expect(celRuleFailures(schema(rules, { n: { type: 'integer' } }), { spec: { n: 5 } })).toEqual([
      { path: 'spec', message: 'n is 5: use less than 3' },
      { path: 'spec', message: 'n must be below 2' },
      { path: 'spec', message: 'failed rule: self.n < 1' },
    ]);
  });

  it('gives integers to CEL as int, prunes nulls, and reports list items and fieldPaths where the apiserver does', () => {
    const nested: CrdSchema = {
      type: 'object',
      properties: {
        spec: {
          type: 'object',
          'x-kubernetes-validations': [{ rule: "type(self.port) == int && !has(self.name)", fieldPath: '.port', message: 'p: int' }],
          properties: {
            port: { type: 'integer' },
            name: { type: 'string' },
            items: { type: 'array', items: { type: 'string', 'x-kubernetes-validations': [{ rule: "self != 'b'", message: 'no: b' }] } },
          },
        },
      },
    };
    expect(celRuleFailures(nested, { spec: { port: 443, name: null, items: ['a', 'b'] } })).toEqual([
      { path: 'spec.items[1]', message: 'no: b' },
    ]);
    expect(celRuleFailures(nested, { spec: { port: 443, name: 'x' } })).toEqual([{ path: 'spec.port', message: 'p: int' }]);
  });

  it('refuses to load a rule the library cannot run, naming it, instead of judging routes without it', () => {
    // isURL is a Kubernetes CEL library function that no JavaScript library ships.
    expect(() => compileCelRules(schema([{ rule: 'isURL(self.url)', message: 'm: x' }]))).toThrow(/isURL\(self\.url\).*cannot be evaluated here/);
  });
});
