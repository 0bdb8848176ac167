// Pins that every CEL rule of the CRD has a TypeScript twin in validateFhirRoute: same message, same
// path, at every place the rule sits. A new CEL rule without a twin (or an example) fails here.
import { describe, expect, it } from 'vitest';
import { validateFhirRoute } from '../../../api/index.ts';
import { fhirRouteCrdSchema, type CelRule, type CrdSchema } from '../../../api/fhirroute/schema.ts';
import { CEL_VIOLATIONS } from './cel-rule-violations.ts';

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

describe('every CEL rule in the CRD has a TypeScript twin', () => {
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

  it.each(CEL_VIOLATIONS)('rejects $path with exactly the CEL message: $message', (violation) => {
    expect(validateFhirRoute(violation.manifest)).toEqual([{ path: violation.path, message: violation.message }]);
  });
});
