// FHIR-shaped payloads for the benchmark: a ~2 KB Patient searchset (what a read-heavy
// client sees) and a ~64 KB transaction Bundle (what a bulk writer posts), and their paths.

export const PATIENT_SEARCH_PATH = '/Patient?family=Chalmers&_count=2';
export const TRANSACTION_PATH = '/';
export const ECHO_PATH = '/_bench/echo';
export const DUPLEX_PATH = '/_bench/duplex';

function patient(index: number): object {
  return {
    resourceType: 'Patient',
    id: `pat-${1000 + index}`,
    meta: { versionId: '3', lastUpdated: '2025-01-15T10:21:07.113Z', profile: ['http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient'] },
    identifier: [
      { use: 'usual', type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] }, system: 'urn:oid:1.2.36.146.595.217.0.1', value: `MRN-${884120 + index}` },
    ],
    active: true,
    name: [{ use: 'official', family: 'Chalmers', given: ['Peter', 'James'] }, { use: 'usual', given: ['Jim'] }],
    telecom: [{ system: 'phone', value: '(03) 5555 6473', use: 'work', rank: 1 }, { system: 'email', value: `jim.${index}@example.org` }],
    gender: 'male',
    birthDate: '1974-12-25',
    address: [{ use: 'home', type: 'both', line: ['534 Erewhon St'], city: 'PleasantVille', district: 'Rainbow', state: 'Vic', postalCode: '3999', period: { start: '1974-12-25' } }],
    managingOrganization: { reference: 'Organization/1' },
  };
}

export function patientSearchBundle(): Buffer {
  const entries = [0, 1].map((index) => ({
    fullUrl: `https://fhir.example.org/r4/Patient/pat-${1000 + index}`,
    resource: patient(index),
    search: { mode: 'match', score: 1 },
  }));
  const bundle = {
    resourceType: 'Bundle',
    id: 'b7a5c0d2-3f61-4f0e-9d0c-5c2f6c1f2a11',
    meta: { lastUpdated: '2025-01-15T10:22:00.000Z' },
    type: 'searchset',
    total: entries.length,
    link: [{ relation: 'self', url: 'https://fhir.example.org/r4/Patient?family=Chalmers&_count=2' }],
    entry: entries,
  };
  return Buffer.from(JSON.stringify(bundle));
}

function observation(index: number): object {
  return {
    fullUrl: `urn:uuid:6f1c2b8e-0000-4000-8000-${String(index).padStart(12, '0')}`,
    resource: {
      resourceType: 'Observation',
      status: 'final',
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
      code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }] },
      subject: { reference: 'Patient/pat-1000' },
      effectiveDateTime: '2025-01-15T10:21:07Z',
      valueQuantity: { value: 60 + (index % 40), unit: 'beats/minute', system: 'http://unitsofmeasure.org', code: '/min' },
    },
    request: { method: 'POST', url: 'Observation' },
  };
}

/** A transaction Bundle of Observations, at least `minimumBytes` long. */
export function transactionBundle(minimumBytes: number): Buffer {
  const entries: object[] = [];
  let body = Buffer.alloc(0);
  while (body.length < minimumBytes) {
    entries.push(observation(entries.length));
    body = Buffer.from(JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: entries }));
  }
  return body;
}

export function transactionResponse(entryCount: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      resourceType: 'Bundle',
      type: 'transaction-response',
      entry: [{ response: { status: '201 Created', location: 'Observation/obs-1/_history/1' } }],
      total: entryCount,
    }),
  );
}
