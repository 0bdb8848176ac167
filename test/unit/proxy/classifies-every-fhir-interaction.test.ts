// Method + path → FHIR interaction, resource type and operation, for every RESTful interaction
// the IG lists; and the PHI-free route template that logs use in place of the path.

import { describe, expect, it } from 'vitest';
import { classifyFhirRequest } from '../../../proxy/src/metadata/fhir-request.ts';

const cases: [string, string, string, string | undefined, string | undefined, string][] = [
  // method, path, interaction, resourceType, operation, routeTemplate
  ['GET', 'Patient/123', 'read', 'Patient', undefined, 'Patient/{id}'],
  ['GET', 'Patient/123/_history/4', 'vread', 'Patient', undefined, 'Patient/{id}/_history/{vid}'],
  ['PUT', 'Patient/123', 'update', 'Patient', undefined, 'Patient/{id}'],
  ['PUT', 'Patient', 'update', 'Patient', undefined, 'Patient'],
  ['PATCH', 'Patient/123', 'patch', 'Patient', undefined, 'Patient/{id}'],
  ['DELETE', 'Patient/123', 'delete', 'Patient', undefined, 'Patient/{id}'],
  ['DELETE', 'Patient', 'delete', 'Patient', undefined, 'Patient'],
  ['GET', 'Patient/123/_history', 'history-instance', 'Patient', undefined, 'Patient/{id}/_history'],
  ['GET', 'Patient/_history', 'history-type', 'Patient', undefined, 'Patient/_history'],
  ['GET', '_history', 'history-system', undefined, undefined, '_history'],
  ['POST', 'Patient', 'create', 'Patient', undefined, 'Patient'],
  ['GET', 'Patient', 'search-type', 'Patient', undefined, 'Patient'],
  ['POST', 'Patient/_search', 'search-type', 'Patient', undefined, 'Patient/_search'],
  ['GET', 'Patient/123/Observation', 'search-type', 'Observation', undefined, 'Patient/{id}/Observation'],
  ['GET', '', 'search-system', undefined, undefined, ''],
  ['POST', '_search', 'search-system', undefined, undefined, '_search'],
  ['GET', 'metadata', 'capabilities', undefined, undefined, 'metadata'],
  ['POST', '', 'batch', undefined, undefined, ''],
  ['GET', '$export', 'operation', undefined, '$export', '$export'],
  ['POST', 'ServiceRequest/$submit', 'operation', 'ServiceRequest', '$submit', 'ServiceRequest/$submit'],
  ['GET', 'Patient/123/$everything', 'operation', 'Patient', '$everything', 'Patient/{id}/$everything'],
  // Routing sees any type; the template shows only R4 types, so a name in that position is not logged.
  ['GET', 'MadeUpType/1', 'read', 'MadeUpType', undefined, '{type}/{id}'],
  ['GET', 'Patient/123/Smith', 'search-type', 'Smith', undefined, 'Patient/{id}/{type}'],
  ['GET', '$export-poll-status/job-1', 'other', undefined, undefined, '{other}'],
  ['GET', 'bulk/files/1.ndjson', 'other', undefined, undefined, '{other}'],
  ['POST', 'Patient/123', 'other', undefined, undefined, '{other}'],
];

describe('classifyFhirRequest', () => {
  it.each(cases)('%s /%s is %s', (method, path, interaction, resourceType, operation, routeTemplate) => {
    const segments = path === '' ? [] : path.split('/');
    expect(classifyFhirRequest(method, segments)).toEqual({ interaction, resourceType, operation, routeTemplate });
  });

  it('never puts an id into the route template', () => {
    const info = classifyFhirRequest('GET', ['Patient', '9f8e7d6c-secret-mrn', '_history', '77']);
    expect(info.routeTemplate).not.toContain('9f8e7d6c');
    expect(info.routeTemplate).not.toContain('77');
  });

  it('never puts a word in a resource type’s place into the route template unless it is an R4 type', () => {
    const info = classifyFhirRequest('GET', ['Smithjohn', 'x']);
    expect(info).toMatchObject({ interaction: 'read', resourceType: 'Smithjohn', routeTemplate: '{type}/{id}' });
  });
});
