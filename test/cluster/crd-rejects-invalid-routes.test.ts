// The FhirRoute CRD in the real apiserver: it installs and is Established, the server itself refuses
// routes that break the schema or a CEL rule with a readable message, and validateFhirRoute (the same
// rules, run from the same CRD file by the CEL library) agrees, case by case of the shared table.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateFhirRoute } from '../../api/index.ts';
import { CEL_VIOLATIONS } from '../unit/api/cel-rule-violations.ts';
import { rawRoute } from '../unit/api/route-fixtures.ts';
import { adminClient, uniqueName } from './cluster-context.ts';
import { createNamespace, ensureCrd, routesPath } from './controller-fixtures.ts';
import type { KubeHttp } from './kube-http.ts';

interface StatusBody {
  kind?: string;
  reason?: string;
  message?: string;
  details?: { causes?: { field?: string; message?: string; reason?: string }[] };
}

/** A route not yet in the cluster, in `namespace`, under a fresh name. */
function placed(manifest: unknown, namespace: string): Record<string, unknown> {
  const route = structuredClone(manifest) as Record<string, unknown>;
  route['metadata'] = { name: uniqueName('route'), namespace };
  return route;
}

interface SchemaCase {
  what: string;
  spec: Record<string, unknown>;
  /** Where the server and validateFhirRoute both report it. */
  path: string;
  /** What the server says about that field. */
  server: RegExp;
}

const SCHEMA_CASES: SchemaCase[] = [
  { what: 'a destination id that is no DNS label', spec: { destination: 'Acme_Payer' }, path: 'spec.destination', server: /^Invalid value: "Acme_Payer": spec\.destination in body should match/ },
  { what: 'no addressing at all', spec: { addressing: undefined }, path: 'spec.addressing', server: /^Required value$/ },
  { what: 'a backend URL of another scheme', spec: { backend: { url: 'ftp://fhir.acme.internal/r4' } }, path: 'spec.backend.url', server: /^Invalid value: "ftp:\/\/fhir\.acme\.internal\/r4": spec\.backend\.url in body should match/ },
  { what: 'a backend URL with credentials', spec: { backend: { url: 'https://gw:secret@fhir.acme.internal/r4' } }, path: 'spec.backend.url', server: /^Invalid value: "https:\/\/gw:secret@fhir\.acme\.internal\/r4": spec\.backend\.url in body should match/ },
  { what: 'a negative timeout', spec: { timeouts: { firstByte: '-5s' } }, path: 'spec.timeouts.firstByte', server: /^Invalid value: "-5s": spec\.timeouts\.firstByte in body should match/ },
  { what: 'a timeout without a unit', spec: { timeouts: { connect: '30' } }, path: 'spec.timeouts.connect', server: /^Invalid value: "30": spec\.timeouts\.connect in body should match/ },
  { what: 'negative retry attempts', spec: { retries: { attempts: -1 } }, path: 'spec.retries.attempts', server: /^Invalid value: -1: spec\.retries\.attempts in body should be greater than or equal to 0$/ },
];

describe('the FhirRoute CRD in kube-apiserver', () => {
  const namespace = uniqueName('crd');
  let kube: KubeHttp;

  /** POSTs the route; the Status the server answered a refusal with (the test fails on acceptance). */
  const refusal = async (route: Record<string, unknown>): Promise<StatusBody> => {
    const response = await kube.request('POST', routesPath(namespace), route);
    expect(response.status, `the server accepted what it should refuse: ${JSON.stringify(route)}`).toBe(422);
    return response.body as StatusBody;
  };

  beforeAll(async () => {
    kube = adminClient();
    await ensureCrd(kube);
    await createNamespace(kube, namespace);
  });

  afterAll(async () => {
    // What was accepted goes again: other files' controllers would otherwise compile it for good.
    await kube?.request('DELETE', routesPath(namespace));
    await kube?.close();
  });

  it('installs and is Established, with its names accepted', async () => {
    const crd = await kube.json<{ status: { conditions: { type: string; status: string }[]; acceptedNames: { kind: string; shortNames: string[] } } }>(
      'GET',
      '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/fhirroutes.fhirmesh.io',
    );
    const conditions = Object.fromEntries(crd.status.conditions.map((c) => [c.type, c.status]));
    expect(conditions).toMatchObject({ Established: 'True', NamesAccepted: 'True' });
    expect(crd.status.acceptedNames).toMatchObject({ kind: 'FhirRoute', shortNames: ['fr'] });
  });

  it('accepts a valid route, which validateFhirRoute accepts too', async () => {
    // A destination of its own: controllers of other files watch every namespace, and ids are unique.
    const route = placed(rawRoute({ destination: uniqueName('valid') }), namespace);
    expect(validateFhirRoute(route)).toEqual([]);
    const response = await kube.request('POST', routesPath(namespace), route);
    expect(response.status).toBe(201);
  });

  it.each(SCHEMA_CASES)('refuses $what at $path, and so does validateFhirRoute', async ({ spec, path, server }) => {
    const route = placed(rawRoute(spec), namespace);
    const status = await refusal(route);
    expect(status.reason).toBe('Invalid');
    // Some schema errors make the server skip the CEL rules, which it says in a cause of its own;
    // validateFhirRoute skips them after the same errors and says so in a problem at ''.
    const rulesSkipped = (cause: { field?: string; message?: string }): boolean =>
      cause.field === '<nil>' && /some validation rules were not checked/.test(cause.message ?? '');
    const causes = (status.details?.causes ?? []).filter((cause) => !rulesSkipped(cause));
    expect(causes.map((cause) => cause.field)).toEqual([path]);
    const said = causes[0]?.message ?? '';
    expect(said).toMatch(server);
    // The one line kubectl prints names the field and says what is wrong with it.
    expect(status.message).toContain(`${path}: ${said}`);
    const skipped = (status.details?.causes ?? []).some(rulesSkipped);
    expect(validateFhirRoute(route).map((problem) => problem.path)).toEqual(skipped ? [path, ''] : [path]);
  });

  it.each(CEL_VIOLATIONS)('refuses at $path, in the words validateFhirRoute uses, the CEL rule: $message', async (violation) => {
    const route = placed(violation.manifest, namespace);
    const status = await refusal(route);
    expect(status.reason).toBe('Invalid');
    expect((status.details?.causes ?? []).map((cause) => [cause.field, cause.message])).toEqual([[violation.path, expect.stringContaining(violation.message)]]);
    expect(status.message).toContain(`${violation.path}: Invalid value: `);
    expect(status.message).toContain(violation.message);
    expect(validateFhirRoute(route)).toEqual([{ path: violation.path, message: violation.message }]);
  });

  it('refuses a timeout too long for duration() itself, as validateFhirRoute does', async () => {
    // duration() fails on it in the apiserver (its words then name the rule, not our message); a rule
    // that fails to evaluate is a refusal in both.
    const route = placed(rawRoute({ timeouts: { firstByte: '999999999999999m' } }), namespace);
    const status = await refusal(route);
    expect((status.details?.causes ?? []).map((cause) => cause.field)).toEqual(['spec.timeouts.firstByte']);
    expect(validateFhirRoute(route).map((problem) => problem.path)).toEqual(['spec.timeouts.firstByte']);
  });
});
