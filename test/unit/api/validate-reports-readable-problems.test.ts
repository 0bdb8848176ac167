// Pins what validateFhirRoute says about routes that break the schema or the checks beyond it:
// the exact path and a message that says what is wrong and what to do.
import { describe, expect, it } from 'vitest';
import { validateFhirRoute } from '../../../api/index.ts';
import { fhirRouteCrdSchema, type CrdSchema } from '../../../api/fhirroute/schema.ts';
import { EXPLAINED_PATTERNS } from '../../../api/fhirroute/validate.ts';
import { rawRoute, route } from './route-fixtures.ts';

const HTTPS_URL = 'https://fhir.acme.internal/r4';
const METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';
// Added, as the apiserver adds its own line, after a schema problem that keeps the CEL rules from running.
const RULES_NOT_CHECKED = {
  path: '',
  message:
    "the CRD's CEL rules (x-kubernetes-validations) were not checked because of the problems above, as in the apiserver: fix those and validate again",
};

describe('validateFhirRoute', () => {
  it('accepts a route that uses every field', () => {
    const full = route({
      addressing: { header: true, pathSegment: true, hosts: ['acme-payer.gw.example.org'], queryParameter: false },
      publicBaseUrl: 'https://gw.example.org/acme-payer',
      backend: {
        url: HTTPS_URL,
        nextHopDestination: 'acme-east',
        tls: { caSecretRef: 'acme-ca', serverName: 'fhir.acme.internal', clientCertSecretRef: 'gw-client' },
      },
      rules: [
        {
          name: 'labs',
          match: { resourceTypes: ['ServiceRequest'], interactions: ['operation', 'search'], operations: ['$submit'], methods: ['POST'] },
          backend: { service: { name: 'labs', namespace: 'labs', port: 8443, path: '/fhir', scheme: 'https' } },
        },
      ],
      allow: { methods: ['GET', 'POST'], maxRequestBodyBytes: 0 },
      timeouts: { connect: '250ms', firstByte: '30s', idle: '1m' },
      retries: { attempts: 5, retryOn: ['connect-failure', 'unavailable'] },
      rewriteResponseUrls: true,
      exportTo: ['*'],
    });
    expect(validateFhirRoute(full)).toEqual([]);
  });

  it.each([
    [
      'a destination that is not a DNS label',
      { destination: 'Acme_Payer' },
      'spec.destination',
      '"Acme_Payer" is not a DNS label: use lowercase letters, digits and \'-\', starting and ending with a letter or digit, e.g. acme-payer',
    ],
    [
      'a host with a port',
      { addressing: { hosts: ['fhir.acme.example:443'] } },
      'spec.addressing.hosts[0]',
      '"fhir.acme.example:443" is not a lowercase DNS name: write it like fhir.acme.example, without port, scheme, wildcard or upper case',
    ],
    [
      'a wildcard host',
      { addressing: { hosts: ['*.gw.example.org'] } },
      'spec.addressing.hosts[0]',
      '"*.gw.example.org" is not a lowercase DNS name: write it like fhir.acme.example, without port, scheme, wildcard or upper case',
    ],
    [
      'an upper-case host',
      { addressing: { hosts: ['FHIR.acme.example'] } },
      'spec.addressing.hosts[0]',
      '"FHIR.acme.example" is not a lowercase DNS name: write it like fhir.acme.example, without port, scheme, wildcard or upper case',
    ],
    [
      'a Service name that starts with a digit',
      { backend: { service: { name: '1fhir', port: 8080 } } },
      'spec.backend.service.name',
      '"1fhir" is not a Service name: use lowercase letters, digits and \'-\', starting with a letter and ending with a letter or digit',
    ],
    [
      'a Service path without its leading slash',
      { backend: { service: { name: 'fhir', port: 8080, path: 'fhir/r4' } } },
      'spec.backend.service.path',
      '"fhir/r4" is not a base path: start it with / and leave out query and fragment, e.g. /fhir/r4',
    ],
    [
      'a duration in hours',
      { timeouts: { firstByte: '2h' } },
      'spec.timeouts.firstByte',
      '"2h" is not a duration: write a whole number followed by ms, s or m, e.g. 250ms, 2s, 1m',
    ],
    [
      'an operation without its $',
      { rules: [{ match: { operations: ['submit'] }, backend: { url: HTTPS_URL } }] },
      'spec.rules[0].match.operations[0]',
      '"submit" is not an operation name: write it with its $, e.g. $submit',
    ],
    [
      'a resource type in lower case',
      { rules: [{ match: { resourceTypes: ['patient'] }, backend: { url: HTTPS_URL } }] },
      'spec.rules[0].match.resourceTypes[0]',
      '"patient" is not a FHIR resource type: write it as FHIR spells it, e.g. ServiceRequest',
    ],
    [
      'an exportTo entry that is no namespace name',
      { exportTo: ['Payers'] },
      'spec.exportTo[0]',
      '"Payers" is not a namespace name or "*": use a namespace\'s name, or "*" for every namespace',
    ],
    [
      'an unknown method',
      { allow: { methods: ['FETCH'] } },
      'spec.allow.methods[0]',
      `"FETCH" is not allowed: use one of ${METHODS}`,
    ],
    [
      'a method listed twice',
      { allow: { methods: ['GET', 'POST', 'GET'] } },
      'spec.allow.methods[2]',
      '"GET" is listed twice: list each value once',
    ],
    [
      'a status code where a condition name belongs',
      { retries: { retryOn: [503] } },
      'spec.retries.retryOn[0]',
      "must be a string, not the number 503: quote it, '503'",
    ],
    ['too many retries', { retries: { attempts: 9 } }, 'spec.retries.attempts', 'must be at most 5 (got 9)'],
    ['a negative body limit', { allow: { maxRequestBodyBytes: -1 } }, 'spec.allow.maxRequestBodyBytes', 'must be at least 0 (got -1)'],
    ['a yes for a boolean', { addressing: { header: 'yes', pathSegment: true } }, 'spec.addressing.header', 'must be true or false, not "yes"'],
    [
      'an empty exportTo',
      { exportTo: [] },
      'spec.exportTo',
      'must not be empty: list at least one entry, or leave the field out',
    ],
    [
      'a destination longer than a DNS label',
      { destination: 'a'.repeat(64) },
      'spec.destination',
      'is 64 characters long; at most 63 are allowed',
    ],
    [
      'too many hosts',
      { addressing: { hosts: Array.from({ length: 17 }, (_, i) => `h${i}.example.org`) } },
      'spec.addressing.hosts',
      'lists 17 entries; at most 16 are allowed',
    ],
    ['a Service without a port', { backend: { service: { name: 'fhir' } } }, 'spec.backend.service.port', 'is required'],
  ])('rejects %s', (_case, spec, path, message) => {
    // Whether the CEL rules ran after it is pinned in crd-cel-rules-refuse-every-violation.test.ts.
    expect(validateFhirRoute(rawRoute(spec)).filter((problem) => problem.path !== '')).toEqual([{ path, message }]);
  });

  it('names a misspelt field and the fields that exist there, and the required one it lacks', () => {
    const manifest = rawRoute({ adressing: { header: true } });
    delete (manifest as { spec: Record<string, unknown> }).spec.addressing;
    expect(validateFhirRoute(manifest)).toEqual([
      { path: 'spec.addressing', message: 'is required' },
      {
        path: 'spec.adressing',
        message:
          'is not a field here: check the spelling (fields here: destination, addressing, publicBaseUrl, backend, rules, allow, timeouts, retries, rewriteResponseUrls, exportTo)',
      },
      RULES_NOT_CHECKED,
    ]);
  });

  it('explains a key that YAML 1.1 read as a boolean', () => {
    expect(validateFhirRoute(rawRoute({ retries: { true: ['503'] } }))).toEqual([
      {
        path: 'spec.retries.true',
        message:
          "is not a field here: YAML 1.1 (which kubectl uses) reads the unquoted keys on, off, yes, no, y and n as true; quote the key, e.g. 'yes':",
      },
      RULES_NOT_CHECKED,
    ]);
  });

  it('requires the manifest envelope: apiVersion, kind and a Kubernetes name', () => {
    const manifest = { apiVersion: 'fhirmesh.io/v1', kind: 'Service', metadata: { name: 'Acme Payer' }, spec: route().spec };
    expect(validateFhirRoute(manifest)).toEqual([
      { path: 'apiVersion', message: 'must be fhirmesh.io/v1alpha1 (got "fhirmesh.io/v1")' },
      { path: 'kind', message: 'must be FhirRoute (got "Service")' },
      {
        path: 'metadata.name',
        message:
          '"Acme Payer" is not a lowercase DNS name: write it like fhir.acme.example, without port, scheme, wildcard or upper case',
      },
      RULES_NOT_CHECKED,
    ]);
    expect(validateFhirRoute(['not', 'a', 'route'])).toEqual([{ path: '', message: 'must be a mapping of fields, not a list' }, RULES_NOT_CHECKED]);
  });

  it('reports every problem of a route at once', () => {
    const problems = validateFhirRoute(
      rawRoute({ destination: 'Acme', timeouts: { connect: '0s' }, backend: { url: 'https://fhir.acme.internal/r4?x=1' } }),
    );
    expect(problems.map((p) => p.path)).toEqual(['spec.destination', 'spec.backend.url', 'spec.timeouts.connect']);
  });

  describe('backend and public URLs', () => {
    it.each([
      ['http://fhir.acme.internal', undefined],
      ['https://fhir.acme.internal:8443/r4/', undefined],
      ['https://[fd00::1]:8443/fhir', undefined],
      [
        'https://fhir.acme.internal/r4?tenant=7',
        'has a query (?...): remove it; a FHIR base URL has none, and each request brings its own',
      ],
      ['https://fhir.acme.internal/r4#top', 'has a fragment (#...): remove it; a FHIR base URL has none'],
      [
        'https://gw:secret@fhir.acme.internal/r4',
        "carries credentials (user:password@): remove them; originators' Authorization passes through untouched, and a client certificate for the backend goes in tls",
      ],
      ['https:///r4', 'has no host: write it like https://fhir.example.org/r4'],
      ['fhir.acme.internal/r4', 'must start with http:// or https:// (lowercase), e.g. https://fhir.example.org/r4'],
      ['HTTPS://fhir.acme.internal/r4', 'must start with http:// or https:// (lowercase), e.g. https://fhir.example.org/r4'],
      ['https://fhir.acme.internal/my r4', 'contains whitespace: percent-encode it or remove it'],
      [
        'https://fhir.acme.internal:99999/r4',
        'is not a valid URL (check the host and port): write it like https://fhir.example.org/r4',
      ],
    ])('%s: %s', (url, message) => {
      const expected = message === undefined ? [] : [{ path: 'spec.backend.url', message }];
      expect(validateFhirRoute(rawRoute({ backend: { url } }))).toEqual(expected);
    });

    it('holds publicBaseUrl and rule backends to the same rules', () => {
      const problems = validateFhirRoute(
        rawRoute({
          publicBaseUrl: '/acme-payer',
          rules: [{ match: { methods: ['POST'] }, backend: { url: 'https://labs.example:70000/fhir' } }],
        }),
      );
      expect(problems).toEqual([
        {
          path: 'spec.publicBaseUrl',
          message: 'must start with http:// or https:// (lowercase), e.g. https://fhir.example.org/r4',
        },
        {
          path: 'spec.rules[0].backend.url',
          message: 'is not a valid URL (check the host and port): write it like https://fhir.example.org/r4',
        },
      ]);
    });
  });

  describe('timeouts (CEL rules of the CRD)', () => {
    it('refuses a zero timeout and names the default', () => {
      expect(validateFhirRoute(rawRoute({ timeouts: { connect: '0ms', idle: '0m' } }))).toEqual([
        {
          path: 'spec.timeouts.connect',
          message: 'must be longer than 0: a zero timeout fails every request; leave it out for the default (2000ms)',
        },
        {
          path: 'spec.timeouts.idle',
          message: 'must be longer than 0: a zero timeout fails every request; leave it out for the default (60000ms)',
        },
      ]);
    });

    it('refuses a timeout longer than a Node timer can hold', () => {
      expect(validateFhirRoute(rawRoute({ timeouts: { idle: '35791m', firstByte: '35792m' } }))).toEqual([
        { path: 'spec.timeouts.firstByte', message: 'is longer than a timer can count (about 24 days): use a shorter duration' },
      ]);
    });
  });

  it('checks status the way the apiserver would', () => {
    const manifest = {
      ...route(),
      status: {
        conditions: [
          { type: 'Accepted', status: 'True', reason: 'Accepted', message: '', lastTransitionTime: 'yesterday' },
          { type: 'Accepted', status: 'False', reason: 'Invalid', message: '' },
        ],
      },
    };
    expect(validateFhirRoute(manifest)).toEqual([
      {
        path: 'status.conditions[0].lastTransitionTime',
        message: '"yesterday" is not an RFC 3339 time such as 2026-01-31T12:00:00Z',
      },
      { path: 'status.conditions[1]', message: 'repeats the type of an earlier entry: each entry needs its own' },
    ]);
  });

  it('can explain every pattern the CRD uses', () => {
    const patterns = (schema: CrdSchema): string[] => [
      ...(schema.pattern === undefined ? [] : [schema.pattern]),
      ...Object.values(schema.properties ?? {}).flatMap(patterns),
      ...(schema.items === undefined ? [] : patterns(schema.items)),
    ];
    const unexplained = patterns(fhirRouteCrdSchema()).filter((p) => !EXPLAINED_PATTERNS.includes(p));
    expect(unexplained).toEqual([]);
  });
});
