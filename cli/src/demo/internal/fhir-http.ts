// The HTTP response shape the sample server's parts hand back, and the FHIR JSON / OperationOutcome
// builders they share. Nothing here touches sockets; sample-fhir-server.ts writes these out.

import type { OperationOutcome, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';
export const FHIR_NDJSON = 'application/fhir+ndjson';

export interface SampleResponse {
  status: number;
  headers: Record<string, string>;
  /** Absent for 204/304 and `Prefer: return=minimal`. */
  body?: string;
}

export function fhirJson(status: number, resource: Resource, headers: Record<string, string> = {}): SampleResponse {
  return { status, headers: { 'Content-Type': FHIR_JSON, ...headers }, body: JSON.stringify(resource) };
}

/** An OperationOutcome with one issue; `diagnostics` should say what was wrong and what to do. */
export function outcome(
  status: number,
  severity: 'error' | 'information',
  code: OperationOutcomeIssue['code'],
  diagnostics: string,
  headers: Record<string, string> = {},
): SampleResponse {
  const body: OperationOutcome = {
    resourceType: 'OperationOutcome',
    issue: [{ severity, code, diagnostics }],
  };
  return fhirJson(status, body, headers);
}
