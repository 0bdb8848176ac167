// Properties of the FHIR interaction classifier (metadata/fhir-request.ts): total (any method,
// any segments, it answers and never throws), its answers are from the fixed vocabularies that
// metric labels and rules use, and the route template it gives logs never carries an id, a version
// id or any other free text from the path: only placeholders, FHIR keywords, type and operation names.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FHIR_INTERACTIONS } from '../../../api/index.ts';
import { classifyFhirRequest } from '../../../proxy/src/metadata/fhir-request.ts';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const TYPE = /^[A-Z][A-Za-z]{1,63}$/;
const OPERATION = /^\$[A-Za-z][A-Za-z0-9-]{0,63}$/;
const KEYWORDS = new Set(['metadata', '_history', '_search', '{id}', '{vid}', '{other}']);

/** A segment of the template that is not free text from the request. */
function isVocabulary(part: string): boolean {
  return KEYWORDS.has(part) || TYPE.test(part) || OPERATION.test(part);
}

/** Ids as servers mint them (FHIR id: [A-Za-z0-9\-.]{1,64}) and PHI people put in paths: never a FHIR word. */
const idArb = fc.oneof(
  fc.uuid(),
  fc.stringMatching(/^[0-9]{1,10}$/),
  fc.stringMatching(/^[a-z0-9][A-Za-z0-9.-]{0,20}$/),
  fc.constantFrom('smith-john-1970-01-01', '123-45-6789', 'john.smith@example.org', 'Ünïcode', 'a b', ''),
);
const wordArb = fc.constantFrom('Patient', 'Observation', 'metadata', '_history', '_search', '$everything', '$export', '$submit', 'X', '$', '$1', 'patient');
const segmentArb = fc.oneof(wordArb, idArb, fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 8 }));
const methodArb = fc.oneof(fc.constantFrom(...METHODS), fc.string({ maxLength: 10 }));

describe('classifyFhirRequest, for any method and segments', () => {
  it('answers from the fixed vocabularies and never throws', () => {
    fc.assert(
      fc.property(methodArb, fc.array(segmentArb, { maxLength: 7 }), (method, segments) => {
        const info = classifyFhirRequest(method, segments);
        expect([...FHIR_INTERACTIONS, 'other']).toContain(info.interaction);
        if (info.resourceType !== undefined) {
          expect(info.resourceType).toMatch(TYPE);
          expect(segments).toContain(info.resourceType);
        }
        if (info.operation !== undefined) {
          expect(info.operation).toMatch(OPERATION);
          expect(info.interaction).toBe('operation');
        }
        // 'other' is one label, whatever the path was.
        if (info.interaction === 'other') expect(info).toEqual({ interaction: 'other', resourceType: undefined, operation: undefined, routeTemplate: '{other}' });
      }),
      { numRuns: 5_000 },
    );
  });

  it('gives a route template of placeholders and FHIR vocabulary only: no id, version id or free text', () => {
    let withId = 0;
    fc.assert(
      fc.property(
        methodArb,
        fc.oneof(
          fc.array(fc.oneof({ arbitrary: wordArb, weight: 3 }, { arbitrary: idArb, weight: 2 }), { maxLength: 5 }),
          // Most FHIR URLs start with a type: Type/id, Type/id/_history/vid, Type/id/Type ...
          fc.tuple(fc.constantFrom('Patient', 'Observation'), fc.array(fc.oneof(wordArb, idArb), { maxLength: 3 })).map(([t, rest]) => [t, ...rest]),
        ),
        idArb.filter((id) => !isVocabulary(id)),
        fc.oneof(fc.constant(1), fc.constant(3), fc.nat({ max: 5 })),
        (method, words, id, at) => {
          // An id anywhere in the path, in particular where FHIR puts ids (after a type, after _history).
          const segments = [...words];
          segments.splice(Math.min(at, segments.length), 0, id);
          const { routeTemplate } = classifyFhirRequest(method, segments);
          const parts = routeTemplate === '' ? [] : routeTemplate.split('/');
          for (const part of parts) expect(isVocabulary(part), `${JSON.stringify(part)} in ${routeTemplate}`).toBe(true);
          if (parts.includes('{id}')) withId++;
        },
      ),
      { numRuns: 5_000 },
    );
    // Not vacuous: many paths had an id where the template has {id}.
    expect(withId).toBeGreaterThan(300);
  });

  it('puts {id} and {vid} where the FHIR URL patterns have them, for any id', () => {
    fc.assert(
      fc.property(fc.constantFrom('Patient', 'Observation', 'MadeUpType'), idArb.filter((id) => id !== '' && !isVocabulary(id)), idArb.filter((id) => id !== '' && !isVocabulary(id)), (type, id, vid) => {
        // A word in a type's place that is not an R4 type could be anything an originator typed: {type}.
        const shown = type === 'MadeUpType' ? '{type}' : type;
        expect(classifyFhirRequest('GET', [type, id])).toMatchObject({ interaction: 'read', routeTemplate: `${shown}/{id}` });
        expect(classifyFhirRequest('GET', [type, id, '_history', vid])).toMatchObject({ interaction: 'vread', routeTemplate: `${shown}/{id}/_history/{vid}` });
        expect(classifyFhirRequest('GET', [type, id, '$everything'])).toMatchObject({ interaction: 'operation', routeTemplate: `${shown}/{id}/$everything` });
      }),
    );
  });
});
