// One manifest per CEL rule of the CRD, at every place the rule sits, that breaks that rule and
// nothing else. The unit test runs them through validateFhirRoute (the library-evaluated rules), the
// cluster test through the real apiserver: both must refuse each one at the same path, in the same words.
import { DEFAULTS } from '../../../api/index.ts';
import { rawRoute } from './route-fixtures.ts';

export interface CelViolation {
  /** Where the rule sits in the CRD schema; `[]` stands for any list item. */
  schemaPath: string;
  /** The rule's message, word for word as in the CRD. */
  message: string;
  /** Where the problem is reported for `manifest`: the rule's place plus its fieldPath. */
  path: string;
  manifest: unknown;
}

const HTTPS_URL = 'https://fhir.acme.internal/r4';
const BACKEND_EXACTLY_ONE = 'backend needs exactly one of url or service: set one and remove the other';
const TLS_NEEDS_HTTPS =
  'tls applies only to an https backend: use an https:// url or service.scheme: https, or remove tls';
const TLS_FILES_NEED_URL =
  'tls.caFile, tls.clientCertFile and tls.clientKeyFile are for url backends in standalone routes files; with a service backend use tls.caSecretRef and tls.clientCertSecretRef';
const CA_EITHER_OR = 'tls.caFile and tls.caSecretRef are alternatives: keep one of them';
const CERT_AND_KEY = 'tls.clientCertFile and tls.clientKeyFile go together: set both or neither';
const CLIENT_CERT_EITHER_OR =
  'tls.clientCertSecretRef and tls.clientCertFile/clientKeyFile are alternatives: keep one of them';

const TIMER_LIMIT = 'is longer than a timer can count (about 24 days): use a shorter duration';
const zeroTimeout = (defaultMs: number): string =>
  `must be longer than 0: a zero timeout fails every request; leave it out for the default (${defaultMs}ms)`;

/** The two duration rules on one timeout field: zero, and one millisecond past what a Node timer holds. */
function timeoutViolations(field: 'connect' | 'firstByte' | 'idle', defaultMs: number): CelViolation[] {
  const at = `spec.timeouts.${field}`;
  return [
    { schemaPath: at, message: zeroTimeout(defaultMs), path: at, manifest: rawRoute({ timeouts: { [field]: '0s' } }) },
    { schemaPath: at, message: TIMER_LIMIT, path: at, manifest: rawRoute({ timeouts: { [field]: '2147483648ms' } }) },
  ];
}

/** A route whose first rule sends POSTs to `backend`. */
function withRuleBackend(backend: Record<string, unknown>): unknown {
  return rawRoute({ rules: [{ match: { methods: ['POST'] }, backend }] });
}

/**
 * The same backend violation at spec.backend and at a rule's backend (the CRD shares one schema).
 * `ruleOn` is where the rule sits below the backend, `reportedOn` where its problem lands.
 */
function atBothBackends(
  message: string,
  backend: Record<string, unknown>,
  ruleOn: '' | '.tls',
  reportedOn: '' | '.tls',
): CelViolation[] {
  return [
    { schemaPath: `spec.backend${ruleOn}`, message, path: `spec.backend${reportedOn}`, manifest: rawRoute({ backend }) },
    {
      schemaPath: `spec.rules[].backend${ruleOn}`,
      message,
      path: `spec.rules[0].backend${reportedOn}`,
      manifest: withRuleBackend(backend),
    },
  ];
}

export const CEL_VIOLATIONS: readonly CelViolation[] = [
  {
    schemaPath: 'spec',
    message:
      'destination "metadata" cannot use pathSegment addressing: /metadata is the FHIR capabilities path; choose another destination id or set addressing.pathSegment: false',
    path: 'spec.destination',
    manifest: rawRoute({ destination: 'metadata', addressing: { pathSegment: true } }),
  },
  {
    schemaPath: 'spec',
    message:
      'rewriteResponseUrls needs publicBaseUrl, the URL that returned references are rewritten to: set publicBaseUrl or set rewriteResponseUrls: false',
    path: 'spec.rewriteResponseUrls',
    manifest: rawRoute({ rewriteResponseUrls: true }),
  },
  {
    schemaPath: 'spec.exportTo',
    message: 'exportTo "*" already means every namespace: list "*" alone, or only namespace names',
    path: 'spec.exportTo',
    manifest: rawRoute({ exportTo: ['*', 'payers'] }),
  },
  {
    schemaPath: 'spec.addressing',
    message:
      'addressing needs at least one mode: set header: true, pathSegment: true or queryParameter: true, or list hosts',
    path: 'spec.addressing',
    manifest: rawRoute({ addressing: { header: false, hosts: [] } }),
  },
  ...atBothBackends(BACKEND_EXACTLY_ONE, { url: HTTPS_URL, service: { name: 'fhir', port: 8080 } }, '', ''),
  ...atBothBackends(
    TLS_NEEDS_HTTPS,
    { url: 'http://fhir.acme.internal/r4', tls: { serverName: 'fhir.acme.internal' } },
    '',
    '.tls',
  ),
  ...atBothBackends(
    TLS_FILES_NEED_URL,
    { service: { name: 'fhir', port: 8443, scheme: 'https' }, tls: { caFile: '/etc/fhirmesh/ca.pem' } },
    '',
    '.tls',
  ),
  ...atBothBackends(
    CA_EITHER_OR,
    { url: HTTPS_URL, tls: { caFile: '/etc/fhirmesh/ca.pem', caSecretRef: 'acme-ca' } },
    '.tls',
    '.tls',
  ),
  ...atBothBackends(CERT_AND_KEY, { url: HTTPS_URL, tls: { clientCertFile: '/etc/fhirmesh/gw.crt' } }, '.tls', '.tls'),
  ...atBothBackends(
    CLIENT_CERT_EITHER_OR,
    {
      url: HTTPS_URL,
      tls: { clientCertSecretRef: 'gw-client', clientCertFile: '/etc/fhirmesh/gw.crt', clientKeyFile: '/etc/fhirmesh/gw.key' },
    },
    '.tls',
    '.tls',
  ),
  {
    schemaPath: 'spec.rules[].match',
    message:
      'match needs at least one criterion (resourceTypes, interactions, operations or methods); to send every request elsewhere, change spec.backend instead',
    path: 'spec.rules[0].match',
    manifest: rawRoute({ rules: [{ match: {}, backend: { url: HTTPS_URL } }] }),
  },
  {
    schemaPath: 'spec.rules[].match',
    message:
      'match.operations only match operation requests, so with match.interactions it needs operation in that list: add operation to interactions or remove interactions',
    path: 'spec.rules[0].match.operations',
    manifest: rawRoute({
      rules: [{ match: { resourceTypes: ['ServiceRequest'], interactions: ['create'], operations: ['$submit'] }, backend: { url: HTTPS_URL } }],
    }),
  },
  ...timeoutViolations('connect', DEFAULTS.connectTimeoutMs),
  ...timeoutViolations('firstByte', DEFAULTS.firstByteTimeoutMs),
  ...timeoutViolations('idle', DEFAULTS.idleTimeoutMs),
];
