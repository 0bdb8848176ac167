// Routes added to Medplum's FhirRouter for what it lacks: capabilities, type and system history,
// system-level POST _search, Patient $everything, and three operations that are this sample's own
// ($ping, $count, $touch), one per operation level. Registered on the router so batch entries reach them too.

import { allOk, badRequest, OperationOutcomeError, parseSearchRequest } from '@medplum/core';
import type { FhirRequest, FhirResponse, FhirRouteHandler, FhirRouter } from '@medplum/fhir-router';
import type { Parameters, Resource } from '@medplum/fhirtypes';
import { buildCapabilityStatement } from './capability-statement.ts';
import type { ExtraOperation } from './capability-statement.ts';
import type { PatientCompartment } from './fhir-definitions.ts';
import type { HistoryQuery, JournaledRepository } from './journaled-repository.ts';
import { patientEverything } from './patient-everything.ts';

const operationDefinitions: Readonly<Record<string, string>> = {
  $everything: 'http://hl7.org/fhir/OperationDefinition/Patient-everything',
  $graphql: 'http://hl7.org/fhir/OperationDefinition/Resource-graphql',
  $export: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export',
  'Patient/$export': 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export',
};

const operationDocumentation: Readonly<Record<string, string>> = {
  $ping: "The sample server's own operation (system level): answers with the server's name and time.",
  $count: "The sample server's own operation (type level): counts the resources a search would match.",
  $touch: "The sample server's own operation (instance level): saves the resource unchanged as a new version.",
  $export: 'FHIR Bulk Data export; requires Prefer: respond-async.',
};

export interface SampleRouteContext {
  router: FhirRouter;
  repo: JournaledRepository;
  compartment: PatientCompartment;
  serverName: string;
  publicBaseUrl: () => string;
  extraOperations: readonly ExtraOperation[];
}

export function registerSampleRoutes(context: SampleRouteContext): void {
  const { router, repo, compartment, serverName } = context;

  router.add(
    'GET',
    'metadata',
    synchronous(() => [
      allOk,
      buildCapabilityStatement(router, {
        serverName,
        publicBaseUrl: context.publicBaseUrl(),
        operationDefinitions,
        operationDocumentation,
        extraOperations: context.extraOperations,
      }),
    ]),
  );

  router.add(
    'GET',
    ':resourceType/_history',
    synchronous((req) => [allOk, repo.typeHistory(req.params.resourceType ?? '', historyQuery(req))]),
    'history-type',
  );
  router.add('GET', '_history', synchronous((req) => [allOk, repo.systemHistory(historyQuery(req))]), 'history-system');

  // fhir-router routes GET [base]?_type=... but has no POST [base]/_search.
  router.add(
    'POST',
    '_search',
    async (req) => {
      const searchRequest = parseSearchRequest('MultipleTypes', req.body as Record<string, string | string[] | undefined>);
      if (!searchRequest.types || searchRequest.types.length === 0) {
        return [badRequest('A system-level search needs _type, e.g. _type=Patient,Observation')];
      }
      return [allOk, await repo.search(searchRequest)];
    },
    'search-system',
  );

  router.add('GET', 'Patient/:id/$everything', async (req) => [allOk, await patientEverything(repo, compartment, req.params.id ?? '')]);

  const ping = synchronous(() => [
    allOk,
    parameters({ server: { valueString: serverName }, time: { valueInstant: new Date().toISOString() } }),
  ]);
  router.add('GET', '$ping', ping);
  router.add('POST', '$ping', ping);

  router.add('GET', ':resourceType/$count', async (req) => {
    const searchRequest = parseSearchRequest(req.params.resourceType ?? '', req.query);
    const bundle = await repo.search({ ...searchRequest, count: 0, offset: 0 });
    return [allOk, parameters({ count: { valueInteger: bundle.total ?? 0 } })];
  });

  router.add('POST', ':resourceType/:id/$touch', async (req) => {
    const current = await repo.readResource<Resource>(req.params.resourceType ?? '', req.params.id ?? '');
    const { versionId: _versionId, lastUpdated: _lastUpdated, ...meta } = current.meta ?? {};
    const touched = await repo.updateResource({ ...current, meta }, { ifMatch: entityTagVersion(req.headers?.['if-match']) });
    return [allOk, touched];
  });
}

/** A route handler whose work is synchronous, with a throw turned into a rejection as the router expects. */
function synchronous(compute: (req: FhirRequest) => FhirResponse): FhirRouteHandler {
  return (req) => {
    try {
      return Promise.resolve(compute(req));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  };
}

function historyQuery(req: FhirRequest): HistoryQuery {
  const since = lastValue(req.query._since);
  if (since !== undefined && Number.isNaN(Date.parse(since))) {
    throw new OperationOutcomeError(badRequest(`_since must be a FHIR instant, e.g. 2024-01-01T00:00:00Z; got '${since}'`));
  }
  return { since, count: integerValue(req.query._count), offset: integerValue(req.query._offset) };
}

function parameters(values: Record<string, Omit<NonNullable<Parameters['parameter']>[number], 'name'>>): Parameters {
  return { resourceType: 'Parameters', parameter: Object.entries(values).map(([name, value]) => ({ name, ...value })) };
}

function entityTagVersion(header: string | undefined): string | undefined {
  return header ? /"([^"]+)"/.exec(header)?.[1] : undefined;
}

function lastValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.at(-1) : value;
}

function integerValue(value: string | string[] | undefined): number | undefined {
  const text = lastValue(value);
  return text !== undefined && /^\d+$/.test(text) ? Number.parseInt(text, 10) : undefined;
}
