// What every contender forwards: a Patient search answered with a 1.2 KB searchset Bundle,
// the destination it is routed by, and the paths of the streaming probes.

export const DESTINATION = 'acme';
export const UNKNOWN_DESTINATION = 'nobody-here';
export const SEARCH_PATH = '/Patient?family=Chalmers&_count=1';
export const UPLOAD_PATH = '/_bench/upload';
/** GET DOWNLOAD_PATH?bytes=N answers N bytes. */
export const DOWNLOAD_PATH = '/_bench/download';

export function searchBundle(): Buffer {
  const bundle = {
    resourceType: 'Bundle',
    id: 'b7a5c0d2-3f61-4f0e-9d0c-5c2f6c1f2a11',
    meta: { lastUpdated: '2025-01-15T10:22:00.000Z' },
    type: 'searchset',
    total: 1,
    link: [{ relation: 'self', url: 'https://fhir.example.org/r4/Patient?family=Chalmers&_count=1' }],
    entry: [
      {
        fullUrl: 'https://fhir.example.org/r4/Patient/pat-1000',
        resource: {
          resourceType: 'Patient',
          id: 'pat-1000',
          meta: { versionId: '3', lastUpdated: '2025-01-15T10:21:07.113Z', profile: ['http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient'] },
          identifier: [
            { use: 'usual', type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] }, system: 'urn:oid:1.2.36.146.595.217.0.1', value: 'MRN-884120' },
          ],
          active: true,
          name: [{ use: 'official', family: 'Chalmers', given: ['Peter', 'James'] }, { use: 'usual', given: ['Jim'] }],
          telecom: [{ system: 'phone', value: '(03) 5555 6473', use: 'work', rank: 1 }, { system: 'email', value: 'jim.chalmers@example.org' }],
          gender: 'male',
          birthDate: '1974-12-25',
          address: [{ use: 'home', type: 'both', line: ['534 Erewhon St'], city: 'PleasantVille', district: 'Rainbow', state: 'Vic', postalCode: '3999', period: { start: '1974-12-25' } }],
          managingOrganization: { reference: 'Organization/1' },
        },
        search: { mode: 'match', score: 1 },
      },
    ],
  };
  return Buffer.from(JSON.stringify(bundle));
}
