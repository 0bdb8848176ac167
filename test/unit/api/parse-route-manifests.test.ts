// Pins how a routes file is read: multi-document YAML or a List, read like kubectl reads it, and
// every refused document named by its position, its route and the path of the problem.
import { describe, expect, it } from 'vitest';
import { formatManifestProblem, parseRouteManifests } from '../../../api/index.ts';

const ROUTE_A = `apiVersion: fhirmesh.io/v1alpha1
kind: FhirRoute
metadata: { name: acme-payer, namespace: payers }
spec:
  destination: acme-payer
  addressing: { header: true }
  backend: { url: https://fhir.acme.internal/r4 }
`;
const ROUTE_B = `apiVersion: fhirmesh.io/v1alpha1
kind: FhirRoute
metadata: { name: labs }
spec:
  destination: labs
  addressing: { pathSegment: true }
  backend: { service: { name: labs-fhir, port: 8080 } }
`;

describe('parseRouteManifests', () => {
  it('reads every FhirRoute document, skips empty ones and refuses other kinds by document', () => {
    const text = `${ROUTE_A}---\n# nothing here\n---\n---\napiVersion: v1\nkind: Service\nmetadata: { name: labs-fhir }\n---\n${ROUTE_B}`;
    const { routes, problems } = parseRouteManifests(text, 'routes.yaml');
    expect(routes.map((r) => `${r.metadata.namespace}/${r.metadata.name}`)).toEqual(['payers/acme-payer', 'default/labs']);
    expect(problems).toEqual([
      {
        source: 'routes.yaml',
        document: 4,
        path: 'kind',
        message: 'Service is not a FhirRoute: a routes file holds only FhirRoute manifests; move the Service elsewhere',
      },
    ]);
  });

  it('puts a route without a namespace in default', () => {
    const { routes } = parseRouteManifests(ROUTE_B, 'routes.yaml');
    expect(routes[0]?.metadata).toEqual({ name: 'labs', namespace: 'default' });
  });

  it('reads the items of a kind: List and locates a bad item by its index', () => {
    const list = {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'fhirmesh.io/v1alpha1', kind: 'FhirRoute', metadata: { name: 'a' }, spec: { destination: 'a', addressing: { header: true }, backend: { url: 'https://a.example' } } },
        { apiVersion: 'fhirmesh.io/v1alpha1', kind: 'FhirRoute', metadata: { name: 'b' }, spec: { destination: 'B', addressing: { header: true }, backend: { url: 'https://b.example' } } },
      ],
    };
    const { routes, problems } = parseRouteManifests(JSON.stringify(list), 'list.json');
    expect(routes.map((r) => r.metadata.name)).toEqual(['a']);
    expect(problems).toEqual([
      {
        source: 'list.json',
        document: 1,
        route: 'default/b',
        path: 'items[1].spec.destination',
        message:
          '"B" is not a DNS label: use lowercase letters, digits and \'-\', starting and ending with a letter or digit, e.g. acme-payer',
      },
    ]);
  });

  it('refuses an invalid route with every problem, naming the route', () => {
    const text = ROUTE_A.replace('https://fhir.acme.internal/r4', 'https://fhir.acme.internal/r4?tenant=7').replace(
      '{ header: true }',
      '{ header: false }',
    );
    const { routes, problems } = parseRouteManifests(text, 'routes.yaml');
    expect(routes).toEqual([]);
    expect(problems.map(formatManifestProblem)).toEqual([
      'routes.yaml document 1 (payers/acme-payer): spec.backend.url: has a query (?...): remove it; a FHIR base URL has none, and each request brings its own',
      'routes.yaml document 1 (payers/acme-payer): spec.addressing: addressing needs at least one mode: set header: true, pathSegment: true or queryParameter: true, or list hosts',
    ]);
  });

  it('refuses a second definition of the same namespace/name', () => {
    const { routes, problems } = parseRouteManifests(`${ROUTE_A}---\n${ROUTE_A}`, 'routes.yaml');
    expect(routes).toHaveLength(1);
    expect(problems).toEqual([
      {
        source: 'routes.yaml',
        document: 2,
        route: 'payers/acme-payer',
        path: 'metadata.name',
        message: 'payers/acme-payer is already defined in document 1: rename one of them or remove one',
      },
    ]);
  });

  it('reports YAML syntax errors with their line, and documents that are not objects', () => {
    const { routes, problems } = parseRouteManifests(`${ROUTE_A}---\nspec: [a, b\n---\njust text\n`, 'routes.yaml');
    expect(routes).toHaveLength(1);
    expect(problems).toEqual([
      {
        source: 'routes.yaml',
        document: 2,
        path: '',
        message: 'is not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ] at line 10, column 1',
      },
      {
        source: 'routes.yaml',
        document: 3,
        path: '',
        message: 'is not a Kubernetes object: write a mapping with apiVersion, kind, metadata and spec',
      },
    ]);
  });

  it('reports well-formed YAML that cannot become data (a merge of a scalar, an alias bomb) by document, without throwing', () => {
    const mergeOfScalar = 'spec:\n  destination:\n    <<: ""\n';
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...'bcdefgh'.split('').map((n, i) => `${n}: &${n} [${Array(10).fill(`*${'abcdefg'[i]}`).join(', ')}]`)].join('\n') + '\n';
    const { routes, problems } = parseRouteManifests(`${ROUTE_A}---\n${mergeOfScalar}---\n${bomb}---\n${ROUTE_B}`, 'routes.yaml');
    expect(routes).toHaveLength(2);
    expect(problems.map((p) => [p.document, p.path, p.message.split(':')[0]])).toEqual([
      [2, '', 'is not valid YAML'],
      [3, '', 'is not valid YAML'],
    ]);
    expect(problems[0]?.message).toBe('is not valid YAML: Merge sources must be maps or map aliases');
  });

  describe('reads YAML as kubectl does', () => {
    it('takes yes as true and an empty field as absent', () => {
      const text = ROUTE_A.replace('{ header: true }', '{ header: yes }').replace(
        '  backend: { url: https://fhir.acme.internal/r4 }',
        '  backend:\n    url: https://fhir.acme.internal/r4\n    tls:\n',
      );
      const { routes, problems } = parseRouteManifests(text, 'routes.yaml');
      expect(problems).toEqual([]);
      expect(routes[0]?.spec.addressing.header).toBe(true);
      expect(routes[0]?.spec.backend).toEqual({ url: 'https://fhir.acme.internal/r4' });
    });

    it('reads an unquoted on: key as true and says why it is not a field', () => {
      const unquoted = parseRouteManifests(`${ROUTE_A}  retries: { on: [unavailable] }\n`, 'routes.yaml');
      expect(unquoted.problems.map((p) => [p.path, p.message])).toEqual([
        [
          'spec.retries.true',
          "is not a field here: YAML 1.1 (which kubectl uses) reads the unquoted keys on, off, yes, no, y and n as true; quote the key, e.g. 'yes':",
        ],
        ['', "the CRD's CEL rules (x-kubernetes-validations) were not checked because of the problems above, as in the apiserver: fix those and validate again"],
      ]);
      const named = parseRouteManifests(`${ROUTE_A}  retries: { retryOn: [unavailable, connect-failure] }\n`, 'routes.yaml');
      expect(named.problems).toEqual([]);
      expect(named.routes[0]?.spec.retries).toEqual({ retryOn: ['unavailable', 'connect-failure'] });
    });

    it('keeps timestamps as text', () => {
      const text = ROUTE_A.replace('namespace: payers }', 'namespace: payers, creationTimestamp: 2026-01-31T12:00:00Z }');
      expect(parseRouteManifests(text, 'routes.yaml').routes[0]?.metadata.creationTimestamp).toBe('2026-01-31T12:00:00Z');
    });
  });
});
