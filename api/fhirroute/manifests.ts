// Reads a routes file (multi-document YAML, or a `kind: List`) into FhirRoutes the way kubectl would
// read it, and sets aside every document that is not a valid FhirRoute with a problem that locates it.
import { Composer, LineCounter, Parser, type Tags } from 'yaml';
import { KIND, type FhirRoute } from './types.ts';
import { describeProblem, validateFhirRoute } from './validate.ts';

export const DEFAULT_NAMESPACE = 'default';

export interface ManifestProblem {
  /** The sourceName given to parseRouteManifests, e.g. the file's path. */
  source: string;
  /** 1-based position of the YAML document in the text, empty documents counted. */
  document: number;
  /** namespace/name of the route, once the document names one. */
  route?: string;
  /** Within the document: `spec.backend.url`, `items[2].spec.backend.url` in a List; '' for the whole document. */
  path: string;
  message: string;
}

export interface ParsedManifests {
  /** Valid routes only, each with its namespace filled in. */
  routes: FhirRoute[];
  problems: ManifestProblem[];
}

/** One line for a problem: `routes.yaml document 2 (payers/acme): spec.backend.url: ...`. */
export function formatManifestProblem(problem: ManifestProblem): string {
  const route = problem.route === undefined ? '' : ` (${problem.route})`;
  return `${problem.source} document ${problem.document}${route}: ${describeProblem(problem)}`;
}

export function parseRouteManifests(yamlText: string, sourceName: string): ParsedManifests {
  const routes: FhirRoute[] = [];
  const problems: ManifestProblem[] = [];
  const documentOf = new Map<string, number>();

  const readObject = (value: unknown, document: number, at: string): void => {
    const problem = (path: string, message: string, route?: string): void => {
      problems.push({ source: sourceName, document, ...(route === undefined ? {} : { route }), path: join(at, path), message });
    };
    if (!isFields(value)) {
      problem('', 'is not a Kubernetes object: write a mapping with apiVersion, kind, metadata and spec');
      return;
    }
    if (value.kind === 'List' && at === '') {
      if (!Array.isArray(value.items)) problem('items', 'must be a list of FhirRoute manifests');
      else value.items.forEach((item, index) => readObject(item, document, `items[${index}]`));
      return;
    }
    if (value.kind !== KIND) {
      problem(
        'kind',
        typeof value.kind === 'string'
          ? `${value.kind} is not a FhirRoute: a routes file holds only FhirRoute manifests; move the ${value.kind} elsewhere`
          : 'is required: a routes file holds only FhirRoute manifests (kind: FhirRoute)',
      );
      return;
    }
    const metadata = value.metadata;
    if (isFields(metadata) && metadata.namespace === undefined) {
      value.metadata = { ...metadata, namespace: DEFAULT_NAMESPACE };
    }
    const meta = isFields(value.metadata) ? value.metadata : {};
    const key = typeof meta.name === 'string' ? `${String(meta.namespace)}/${meta.name}` : undefined;
    const routeProblems = validateFhirRoute(value);
    for (const p of routeProblems) problem(p.path, p.message, key);
    if (routeProblems.length > 0 || key === undefined) return;
    const earlier = documentOf.get(key);
    if (earlier !== undefined) {
      problem('metadata.name', `${key} is already defined in document ${earlier}: rename one of them or remove one`, key);
      return;
    }
    documentOf.set(key, document);
    // validateFhirRoute has just checked the whole object against the CRD schema and rules.
    routes.push(value as unknown as FhirRoute);
  };

  // One document at a time (parsed, read, validated, dropped): a 100,000-route file never has all of
  // its syntax trees alive at once, only the routes read from them.
  const composer = new Composer({ version: '1.1', customTags: likeKubectl });
  const lines = new LineCounter();
  let index = 0;
  const take = (doc: ReturnType<Composer['compose']> extends Generator<infer D> ? D : never): void => {
    const document = ++index;
    if (doc.errors.length > 0) {
      for (const error of doc.errors) {
        const reason = (error.message.split('\n', 1)[0] ?? error.code).replace(/:$/, '');
        const { line, col } = lines.linePos(error.pos[0]);
        problems.push({ source: sourceName, document, path: '', message: `is not valid YAML: ${reason} at line ${line}, column ${col}` });
      }
      return;
    }
    let js: unknown;
    try {
      js = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      // Well-formed YAML can still fail to become data (a `<<` merge of a scalar, an alias bomb):
      // that is a problem of this document, not a reason to throw for the whole file.
      problems.push({ source: sourceName, document, path: '', message: `is not valid YAML: ${err instanceof Error ? err.message : String(err)}` });
      return;
    }
    const value: unknown = withoutNulls(js);
    if (value !== null && value !== undefined) readObject(value, document, '');
  };
  for (const doc of composer.compose(new Parser(lines.addNewLine).parse(yamlText))) take(doc);
  for (const doc of composer.end()) take(doc);
  return { routes, problems };
}

/**
 * YAML 1.1, because kubectl reads manifests that way (`header: yes` is true, an unquoted `on:` key
 * is true), minus what kubectl hands on as text anyway: timestamps and base-60 numbers.
 */
function likeKubectl(tags: Tags): Tags {
  return tags.filter((tag) => {
    const { tag: name, format } = tag as { tag?: string; format?: string };
    return name !== 'tag:yaml.org,2002:timestamp' && format !== 'TIME';
  });
}

/** The apiserver prunes null fields before validating, so `tls:` with nothing under it means no tls. */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (!isFields(value)) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, field]) => field !== null)
      .map(([name, field]) => [name, withoutNulls(field)]),
  );
}

function join(at: string, path: string): string {
  if (at === '') return path;
  return path === '' ? at : `${at}.${path}`;
}

function isFields(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
