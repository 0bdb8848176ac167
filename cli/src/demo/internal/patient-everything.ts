// Patient $everything over Medplum's search: the patient plus every live resource in its Patient
// compartment. Shared by the $everything route and Patient-level $export.

import { parseSearchRequest } from '@medplum/core';
import type { WithId } from '@medplum/core';
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import type { PatientCompartment } from './fhir-definitions.ts';
import type { JournaledRepository } from './journaled-repository.ts';

/**
 * Patient $everything: the patient plus every live resource in its Patient compartment, found with
 * the library's search on each compartment parameter (e.g. Observation?subject=Patient/p1).
 */
export async function patientEverything(
  repo: JournaledRepository,
  compartment: PatientCompartment,
  patientId: string,
): Promise<Bundle> {
  const patient = await repo.readResource<WithId<Resource>>('Patient', patientId);
  const found = new Map<string, WithId<Resource>>([[`Patient/${patient.id}`, patient]]);
  for (const resourceType of repo.liveResourceTypes()) {
    for (const param of compartment.get(resourceType) ?? []) {
      const members = await repo.searchResources(parseSearchRequest(resourceType, { [param]: `Patient/${patientId}` }));
      for (const member of members) {
        found.set(`${member.resourceType}/${member.id}`, member);
      }
    }
  }
  const entry = [...found.values()].map((resource): BundleEntry => ({ resource, search: { mode: 'match' } }));
  return { resourceType: 'Bundle', type: 'searchset', total: entry.length, entry };
}
