// Pins that api/fhirroute/types.ts and the CRD describe the same fields: each key list below must
// name every key of its type (the compiler checks) and equal the CRD's properties (this test checks).
import { describe, expect, it } from 'vitest';
import {
  FHIR_INTERACTIONS,
  HTTP_METHODS,
  INTERACTION_GROUPS,
  RETRY_ON,
  type AddressingSpec,
  type BackendSpec,
  type BackendTlsSpec,
  type Condition,
  type FhirRouteSpec,
  type FhirRouteStatus,
  type RuleMatchSpec,
  type RuleSpec,
  type ServiceRef,
} from '../../../api/index.ts';
import { DURATION_PATTERN } from '../../../api/fhirroute/duration.ts';
import { fhirRouteCrdSchema, type CrdSchema } from '../../../api/fhirroute/schema.ts';

/** Every key of T, each marked by whether T requires it; `satisfies` makes a missing or extra key a compile error. */
type Presence<T> = { [K in keyof T]-?: undefined extends T[K] ? 'optional' : 'required' };

const SPEC = {
  destination: 'required',
  addressing: 'required',
  publicBaseUrl: 'optional',
  backend: 'required',
  rules: 'optional',
  allow: 'optional',
  timeouts: 'optional',
  retries: 'optional',
  rewriteResponseUrls: 'optional',
  exportTo: 'optional',
} as const satisfies Presence<FhirRouteSpec>;

const ADDRESSING = {
  header: 'optional',
  pathSegment: 'optional',
  hosts: 'optional',
  queryParameter: 'optional',
} as const satisfies Presence<AddressingSpec>;

const BACKEND = {
  url: 'optional',
  service: 'optional',
  nextHopDestination: 'optional',
  tls: 'optional',
} as const satisfies Presence<BackendSpec>;

const SERVICE = {
  name: 'required',
  namespace: 'optional',
  port: 'required',
  path: 'optional',
  scheme: 'optional',
} as const satisfies Presence<ServiceRef>;

const TLS = {
  serverName: 'optional',
  caSecretRef: 'optional',
  clientCertSecretRef: 'optional',
  caFile: 'optional',
  clientCertFile: 'optional',
  clientKeyFile: 'optional',
} as const satisfies Presence<BackendTlsSpec>;

const RULE = { name: 'optional', match: 'required', backend: 'required' } as const satisfies Presence<RuleSpec>;

const MATCH = {
  resourceTypes: 'optional',
  interactions: 'optional',
  operations: 'optional',
  methods: 'optional',
} as const satisfies Presence<RuleMatchSpec>;

const ALLOW = { methods: 'optional', maxRequestBodyBytes: 'optional', encodedPathSeparators: 'optional' } as const satisfies Presence<
  NonNullable<FhirRouteSpec['allow']>
>;
const TIMEOUTS = { connect: 'optional', firstByte: 'optional', idle: 'optional' } as const satisfies Presence<
  NonNullable<FhirRouteSpec['timeouts']>
>;
const RETRIES = { attempts: 'optional', retryOn: 'optional' } as const satisfies Presence<NonNullable<FhirRouteSpec['retries']>>;

const STATUS = {
  observedGeneration: 'optional',
  conditions: 'optional',
  proxies: 'optional',
} as const satisfies Presence<FhirRouteStatus>;

const CONDITION = {
  type: 'required',
  status: 'required',
  reason: 'required',
  message: 'required',
  observedGeneration: 'optional',
  lastTransitionTime: 'optional',
} as const satisfies Presence<Condition>;

const PROXIES = { total: 'required', programmed: 'required' } as const satisfies Presence<
  NonNullable<FhirRouteStatus['proxies']>
>;

function at(path: string): CrdSchema {
  let node: CrdSchema | undefined = fhirRouteCrdSchema();
  for (const step of path.split('.')) {
    node = step === '[]' ? node?.items : node?.properties?.[step];
  }
  if (node === undefined) throw new Error(`the CRD has no ${path}`);
  return node;
}

/** The CRD's own view of an object: each property marked required or optional. */
function presenceInCrd(path: string): Record<string, 'required' | 'optional'> {
  const node = at(path);
  const required = new Set(node.required ?? []);
  return Object.fromEntries(
    Object.keys(node.properties ?? {}).map((key) => [key, required.has(key) ? 'required' : 'optional']),
  );
}

describe('the CRD schema and types.ts describe the same FhirRoute', () => {
  it.each([
    ['spec', SPEC],
    ['spec.addressing', ADDRESSING],
    ['spec.backend', BACKEND],
    ['spec.backend.service', SERVICE],
    ['spec.backend.tls', TLS],
    ['spec.rules.[]', RULE],
    ['spec.rules.[].match', MATCH],
    ['spec.rules.[].backend', BACKEND],
    ['spec.rules.[].backend.service', SERVICE],
    ['spec.rules.[].backend.tls', TLS],
    ['spec.allow', ALLOW],
    ['spec.timeouts', TIMEOUTS],
    ['spec.retries', RETRIES],
    ['status', STATUS],
    ['status.conditions.[]', CONDITION],
    ['status.proxies', PROXIES],
  ])('%s has the same fields, equally required', (path, presence) => {
    expect(presenceInCrd(path)).toEqual(presence);
  });

  it('offers the same HTTP methods, retry conditions and interactions as the types', () => {
    expect(at('spec.allow.methods.[]').enum).toEqual([...HTTP_METHODS]);
    expect(at('spec.rules.[].match.methods.[]').enum).toEqual([...HTTP_METHODS]);
    expect(at('spec.retries.retryOn.[]').enum).toEqual([...RETRY_ON]);
    expect(at('spec.rules.[].match.interactions.[]').enum).toEqual([
      ...FHIR_INTERACTIONS,
      ...Object.keys(INTERACTION_GROUPS),
    ]);
    expect(at('status.conditions.[].type').enum).toEqual(['Accepted', 'ResolvedRefs', 'Programmed']);
  });

  it('uses the duration syntax that parseDurationMs reads, in the pattern and in the CEL guard before duration()', () => {
    for (const field of ['connect', 'firstByte', 'idle']) {
      expect(at(`spec.timeouts.${field}`).pattern).toBe(DURATION_PATTERN);
      const durationRules = (at(`spec.timeouts.${field}`)['x-kubernetes-validations'] ?? []).filter((r) => r.rule.includes('duration('));
      expect(durationRules.map((r) => r.rule.startsWith(`!self.matches('${DURATION_PATTERN}') || `))).toEqual([true]);
    }
  });

  it('gives every rule backend the schema of spec.backend', () => {
    expect(at('spec.rules.[].backend')).toEqual(at('spec.backend'));
  });
});
