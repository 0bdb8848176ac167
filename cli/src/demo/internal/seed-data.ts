// A small clinical data set with stable ids, so the demo and tests can name resources directly
// (GET Patient/pat-1). meta.source names the server, which shows which destination answered.

import type { Resource } from '@medplum/fhirtypes';
import type { JournaledRepository } from './journaled-repository.ts';

export const SEED_IDS = {
  Patient: ['pat-1', 'pat-2', 'pat-3'],
  Practitioner: ['prac-1'],
  Observation: ['obs-1', 'obs-2', 'obs-3', 'obs-4'],
  ServiceRequest: ['sr-1'],
  MedicationRequest: ['mr-1'],
} as const;

export async function seedSampleData(repo: JournaledRepository, serverName: string): Promise<void> {
  const source = `urn:fhirmesh:sample-fhir-server:${serverName}`;
  for (const resource of seedResources()) {
    await repo.createResource({ ...resource, meta: { source } });
  }
}

function seedResources(): Resource[] {
  const mrn = (value: string) => [{ system: 'urn:fhirmesh:sample:mrn', value }];
  const loinc = (code: string, display: string) => ({ coding: [{ system: 'http://loinc.org', code, display }], text: display });
  const vitalSigns = [
    {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }],
    },
  ];
  return [
    {
      resourceType: 'Patient',
      id: 'pat-1',
      identifier: mrn('MRN-1001'),
      name: [{ family: 'Silva', given: ['Ana'] }],
      gender: 'female',
      birthDate: '1984-03-12',
    },
    {
      resourceType: 'Patient',
      id: 'pat-2',
      identifier: mrn('MRN-1002'),
      name: [{ family: 'Okafor', given: ['Ben'] }],
      gender: 'male',
      birthDate: '1975-11-02',
    },
    {
      resourceType: 'Patient',
      id: 'pat-3',
      identifier: mrn('MRN-1003'),
      name: [{ family: 'Chen', given: ['Wei'] }],
      gender: 'female',
      birthDate: '1992-07-21',
    },
    {
      resourceType: 'Practitioner',
      id: 'prac-1',
      name: [{ family: 'Patel', given: ['Maya'], prefix: ['Dr.'] }],
    },
    {
      resourceType: 'Observation',
      id: 'obs-1',
      status: 'final',
      category: vitalSigns,
      code: loinc('8867-4', 'Heart rate'),
      subject: { reference: 'Patient/pat-1' },
      effectiveDateTime: '2024-05-01T09:30:00Z',
      valueQuantity: { value: 72, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
    },
    {
      resourceType: 'Observation',
      id: 'obs-2',
      status: 'final',
      category: vitalSigns,
      code: loinc('29463-7', 'Body weight'),
      subject: { reference: 'Patient/pat-1' },
      effectiveDateTime: '2024-05-01T09:32:00Z',
      valueQuantity: { value: 68, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' },
    },
    {
      resourceType: 'Observation',
      id: 'obs-3',
      status: 'final',
      code: loinc('2339-0', 'Glucose [Mass/volume] in Blood'),
      subject: { reference: 'Patient/pat-2' },
      effectiveDateTime: '2024-05-02T07:15:00Z',
      valueQuantity: { value: 95, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' },
    },
    {
      resourceType: 'Observation',
      id: 'obs-4',
      status: 'final',
      category: vitalSigns,
      code: loinc('8867-4', 'Heart rate'),
      subject: { reference: 'Patient/pat-3' },
      effectiveDateTime: '2024-05-03T14:05:00Z',
      valueQuantity: { value: 64, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
    },
    {
      resourceType: 'ServiceRequest',
      id: 'sr-1',
      status: 'active',
      intent: 'order',
      code: loinc('58410-2', 'CBC panel - Blood by Automated count'),
      subject: { reference: 'Patient/pat-2' },
      requester: { reference: 'Practitioner/prac-1' },
      authoredOn: '2024-05-02T08:00:00Z',
    },
    {
      resourceType: 'MedicationRequest',
      id: 'mr-1',
      status: 'active',
      intent: 'order',
      medicationCodeableConcept: {
        coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '860975', display: 'metformin 500 MG Oral Tablet' }],
        text: 'Metformin 500 mg tablet',
      },
      subject: { reference: 'Patient/pat-1' },
      requester: { reference: 'Practitioner/prac-1' },
      authoredOn: '2024-05-01T10:00:00Z',
      dosageInstruction: [{ text: 'One tablet twice daily with meals' }],
    },
  ];
}
