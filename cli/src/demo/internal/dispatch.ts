// Turns one HTTP request under /fhir into a response: the async $export family goes to BulkExportJobs,
// everything else to Medplum's FhirRouter, whose [outcome, resource] result gets a real server's
// status, headers (ETag, Last-Modified, Location), conditional-read and Prefer handling, and public URLs.

import type { IncomingHttpHeaders } from 'node:http';
import { getStatus, isResourceType } from '@medplum/core';
import type { FhirRequest, FhirRouter, HttpMethod, RestInteraction } from '@medplum/fhir-router';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import type { BulkExportJobs } from './bulk-export.ts';
import { fhirJson, outcome } from './fhir-http.ts';
import type { SampleResponse } from './fhir-http.ts';
import type { JournaledRepository } from './journaled-repository.ts';
import { absolutizeBundle, pageLinks, versionUrl } from './public-urls.ts';

export const FHIR_BASE_PATH = '/fhir';

export interface DispatchRequest {
  method: string;
  /** The request-target exactly as received, e.g. `/fhir/Patient?name=x`. */
  target: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface DispatcherContext {
  router: FhirRouter;
  repo: JournaledRepository;
  bulk: BulkExportJobs;
  publicBaseUrl: () => string;
}

const routedMethods: ReadonlySet<string> = new Set<HttpMethod>(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
const jsonMediaTypes: ReadonlySet<string> = new Set(['application/fhir+json', 'application/json', 'application/json-patch+json']);
const writeInteractions: ReadonlySet<RestInteraction | undefined> = new Set<RestInteraction>(['create', 'update', 'patch']);

export async function dispatch(context: DispatcherContext, request: DispatchRequest): Promise<SampleResponse> {
  const queryStart = request.target.indexOf('?');
  const rawPath = queryStart < 0 ? request.target : request.target.slice(0, queryStart);
  const rawQuery = queryStart < 0 ? '' : request.target.slice(queryStart + 1);
  if (rawPath !== FHIR_BASE_PATH && !rawPath.startsWith(`${FHIR_BASE_PATH}/`)) {
    return outcome(404, 'error', 'not-found', `This sample server serves FHIR R4 under ${FHIR_BASE_PATH}; try GET ${FHIR_BASE_PATH}/metadata.`);
  }
  // Some clients percent-encode the '$' of operation names.
  const path = rawPath.slice(FHIR_BASE_PATH.length).replace(/%24/gi, '$').replace(/^\/+|\/+$/g, '');
  const segments = path === '' ? [] : path.split('/');
  // Node omits the body of a HEAD response itself; everything else is as for GET.
  const method = request.method === 'HEAD' ? 'GET' : request.method;
  const publicBaseUrl = context.publicBaseUrl();

  const asyncResponse = await dispatchAsyncPattern(context, { method, path, segments, rawQuery, request, publicBaseUrl });
  if (asyncResponse) {
    return asyncResponse;
  }

  const [first] = segments;
  if (first !== undefined && !/^[$_]|^metadata$/.test(first) && !isResourceType(first)) {
    return outcome(404, 'error', 'not-found', `'${first}' is not a FHIR R4 resource type, so ${FHIR_BASE_PATH}/${path} names nothing on this server.`);
  }
  if (!routedMethods.has(method)) {
    return outcome(405, 'error', 'not-supported', `${request.method} is not a FHIR RESTful method; use GET, POST, PUT, PATCH or DELETE.`, {
      Allow: 'GET, HEAD, POST, PUT, PATCH, DELETE',
    });
  }
  const parsed = parseBody(method, segments, rawQuery, request);
  if ('status' in parsed) {
    return parsed;
  }

  const routeUrl = rawQuery ? `${path}?${rawQuery}` : path;
  const interaction = findInteraction(context.router, method as HttpMethod, routeUrl);
  const [resourceType = '', id = ''] = segments;
  const createsByUpdate = interaction === 'update' && segments.length === 2 && !context.repo.isLive(resourceType, id);
  const fhirRequest: FhirRequest = {
    method: method as HttpMethod,
    url: routeUrl,
    pathname: '',
    body: parsed.body,
    params: {},
    query: {},
    headers: request.headers,
    // Without this flag a transaction Bundle is processed as a batch (entries fail independently).
    config: { transactions: true },
  };
  const [result, resource] = await context.router.handleRequest(fhirRequest, context.repo);
  let status = getStatus(result);
  if (status >= 400 || !resource) {
    return fhirJson(status, result);
  }
  if (createsByUpdate && status === 200) {
    // fhir-router answers 200 for update-as-create; FHIR says 201 Created.
    status = 201;
  }

  const headers: Record<string, string> = {};
  if (isGeneratedBundle(resource)) {
    absolutizeBundle(resource, publicBaseUrl);
    if (resource.type === 'searchset' || resource.type === 'history') {
      const isPostSearch = method === 'POST' && segments.at(-1) === '_search';
      const linkPath = isPostSearch ? segments.slice(0, -1).join('/') : path;
      resource.link = pageLinks(publicBaseUrl, linkPath, parsed.searchParams ?? new URLSearchParams(rawQuery), resource.total);
    }
  }
  const versionId = resource.meta?.versionId;
  const lastUpdated = resource.meta?.lastUpdated;
  if (versionId) {
    headers.ETag = `W/"${versionId}"`;
  }
  if (versionId && lastUpdated) {
    headers['Last-Modified'] = new Date(lastUpdated).toUTCString();
  }
  if (status === 201) {
    const location = versionUrl(publicBaseUrl, resource);
    if (location) {
      headers.Location = location;
    }
  }
  if ((interaction === 'read' || interaction === 'vread') && isNotModified(request.headers, versionId, lastUpdated)) {
    return { status: 304, headers };
  }
  if (writeInteractions.has(interaction)) {
    const preferred = preferredReturn(request.headers.prefer);
    if (preferred === 'minimal') {
      return { status, headers };
    }
    if (preferred === 'OperationOutcome') {
      return fhirJson(status, result, headers);
    }
  }
  return fhirJson(status, resource, headers);
}

interface AsyncPatternRequest {
  method: string;
  path: string;
  segments: string[];
  rawQuery: string;
  request: DispatchRequest;
  publicBaseUrl: string;
}

async function dispatchAsyncPattern(context: DispatcherContext, input: AsyncPatternRequest): Promise<SampleResponse | undefined> {
  const { method, path, segments, rawQuery, publicBaseUrl } = input;
  const [first, second, third] = segments;
  if (first === '$export-poll-status' && second !== undefined && segments.length === 2) {
    if (method === 'GET') {
      return context.bulk.poll(second, publicBaseUrl);
    }
    return method === 'DELETE' ? context.bulk.cancel(second) : methodNotAllowed(input.request.method, path, 'GET, HEAD, DELETE');
  }
  if (first === '$export-file' && second !== undefined && third !== undefined && segments.length === 3) {
    return method === 'GET' ? context.bulk.download(second, third) : methodNotAllowed(input.request.method, path, 'GET, HEAD');
  }
  const level = path === '$export' ? 'system' : path === 'Patient/$export' ? 'Patient' : undefined;
  if (!level) {
    return undefined;
  }
  if (method !== 'GET') {
    return methodNotAllowed(input.request.method, path, 'GET, HEAD');
  }
  return context.bulk.kickoff({
    level,
    query: new URLSearchParams(rawQuery),
    prefer: singleHeader(input.request.headers.prefer),
    requestUrl: `${publicBaseUrl}/${path}${rawQuery ? `?${rawQuery}` : ''}`,
    publicBaseUrl,
  });
}

type ParsedBody = { body: unknown; searchParams?: URLSearchParams };

function parseBody(method: string, segments: string[], rawQuery: string, request: DispatchRequest): ParsedBody | SampleResponse {
  const isPostSearch = method === 'POST' && segments.at(-1) === '_search';
  const mediaType = (singleHeader(request.headers['content-type']) ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (isPostSearch && (request.body.length === 0 || mediaType === 'application/x-www-form-urlencoded')) {
    // FHIR allows parameters in both the URL and the form body of POST _search; the router reads only the body.
    const searchParams = new URLSearchParams(rawQuery);
    for (const [name, value] of new URLSearchParams(request.body.toString('utf8'))) {
      searchParams.append(name, value);
    }
    return { body: toQueryRecord(searchParams), searchParams };
  }
  if (request.body.length === 0) {
    return { body: undefined };
  }
  if (mediaType !== '' && !jsonMediaTypes.has(mediaType)) {
    return outcome(
      415,
      'error',
      'not-supported',
      `Content-Type '${mediaType}' is not supported: send application/fhir+json (application/json-patch+json for PATCH, application/x-www-form-urlencoded for POST _search).`,
    );
  }
  try {
    return { body: JSON.parse(request.body.toString('utf8')) as unknown };
  } catch (err) {
    return outcome(400, 'error', 'structure', `The request body is not valid JSON (${(err as Error).message}); send a FHIR JSON resource.`);
  }
}

function toQueryRecord(params: URLSearchParams): Record<string, string | string[]> {
  const record: Record<string, string | string[]> = {};
  for (const [name, value] of params) {
    const existing = record[name];
    record[name] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  return record;
}

function findInteraction(router: FhirRouter, method: HttpMethod, routeUrl: string): RestInteraction | undefined {
  try {
    return router.find(method, routeUrl)?.data?.interaction;
  } catch {
    // An over-long query string; handleRequest reports it as a 400.
    return undefined;
  }
}

/** A Bundle the router assembled for this response (search, history, batch), not a stored Bundle resource. */
function isGeneratedBundle(resource: Resource): resource is Bundle {
  return resource.resourceType === 'Bundle' && !resource.meta?.versionId;
}

// If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2). HTTP dates have whole seconds.
function isNotModified(headers: IncomingHttpHeaders, versionId: string | undefined, lastUpdated: string | undefined): boolean {
  const ifNoneMatch = singleHeader(headers['if-none-match']);
  if (ifNoneMatch !== undefined) {
    return (
      versionId !== undefined &&
      ifNoneMatch.split(',').some((tag) => ['*', `"${versionId}"`, `W/"${versionId}"`].includes(tag.trim()))
    );
  }
  const ifModifiedSince = singleHeader(headers['if-modified-since']);
  if (ifModifiedSince === undefined || lastUpdated === undefined) {
    return false;
  }
  const since = Date.parse(ifModifiedSince);
  return !Number.isNaN(since) && Math.floor(Date.parse(lastUpdated) / 1000) * 1000 <= since;
}

function preferredReturn(prefer: string | string[] | undefined): string | undefined {
  for (const token of (singleHeader(prefer) ?? '').split(/[,;]/)) {
    const [name, value] = token.split('=').map((part) => part.trim());
    if (name?.toLowerCase() === 'return' && value) {
      return value.replace(/^"|"$/g, '');
    }
  }
  return undefined;
}

function methodNotAllowed(method: string, path: string, allow: string): SampleResponse {
  return outcome(405, 'error', 'not-supported', `${method} is not allowed on ${FHIR_BASE_PATH}/${path}; use ${allow}.`, { Allow: allow });
}

function singleHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}
