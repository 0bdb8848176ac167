// Makes the URLs a response carries absolute against the server's public base URL. The exchange-routing
// IG puts this duty on the destination: fullUrl, Location and Bundle.link must name the public base.

import type { Bundle, BundleEntry, BundleLink, Resource } from '@medplum/fhirtypes';

/** `<base>/<Type>/<id>/_history/<vid>`: the Location of a created or updated version. */
export function versionUrl(publicBaseUrl: string, resource: Resource): string | undefined {
  if (!resource.id) {
    return undefined;
  }
  const vid = resource.meta?.versionId;
  return `${publicBaseUrl}/${resource.resourceType}/${resource.id}${vid ? `/_history/${vid}` : ''}`;
}

/**
 * Adds `fullUrl` to every entry, makes `response.location` absolute (with ETag and Last-Modified
 * for batch/transaction responses), and recurses into Bundles nested in entries (a search inside
 * a batch). Mutates the Bundle: callers pass one the router built for this response alone.
 */
export function absolutizeBundle(bundle: Bundle, publicBaseUrl: string): void {
  for (const entry of bundle.entry ?? []) {
    absolutizeEntry(entry, publicBaseUrl);
    if (entry.resource?.resourceType === 'Bundle' && !entry.resource.meta?.versionId) {
      absolutizeBundle(entry.resource, publicBaseUrl);
    }
  }
}

function absolutizeEntry(entry: BundleEntry, publicBaseUrl: string): void {
  const resource = entry.resource;
  if (resource?.id && !entry.fullUrl) {
    entry.fullUrl = `${publicBaseUrl}/${resource.resourceType}/${resource.id}`;
  } else if (!resource && entry.request?.url && !entry.request.url.includes('?') && entry.request.method !== 'POST') {
    // A delete in a history Bundle carries no resource; its request URL still names it.
    entry.fullUrl = `${publicBaseUrl}/${entry.request.url}`;
  }
  const response = entry.response;
  if (!response) {
    return;
  }
  if (response.location && !/^[a-z][a-z0-9+.-]*:/i.test(response.location)) {
    response.location = resource ? (versionUrl(publicBaseUrl, resource) ?? response.location) : `${publicBaseUrl}/${response.location}`;
  }
  const versionId = resource?.meta?.versionId;
  if (versionId && resource.resourceType !== 'Bundle') {
    response.etag ??= `W/"${versionId}"`;
    response.lastModified ??= resource.meta?.lastUpdated;
  }
}

/**
 * Bundle.link for a search or history page: self, and first/previous/next when the request asked
 * for a page size with `_count`. `query` is the request's parameters in order (URL query, or the
 * form body of a POST _search).
 */
export function pageLinks(publicBaseUrl: string, path: string, query: URLSearchParams, total: number | undefined): BundleLink[] {
  const render = (params: URLSearchParams): string => {
    const search = params.toString();
    return `${publicBaseUrl}${path ? `/${path}` : ''}${search ? `?${search}` : ''}`;
  };
  const links: BundleLink[] = [{ relation: 'self', url: render(query) }];
  const count = integerParam(query, '_count');
  if (count === undefined || count <= 0 || total === undefined) {
    return links;
  }
  const offset = integerParam(query, '_offset') ?? 0;
  const at = (pageOffset: number): string => {
    const params = new URLSearchParams(query);
    params.set('_offset', String(pageOffset));
    return render(params);
  };
  links.push({ relation: 'first', url: at(0) });
  if (offset > 0) {
    links.push({ relation: 'previous', url: at(Math.max(0, offset - count)) });
  }
  if (offset + count < total) {
    links.push({ relation: 'next', url: at(offset + count) });
  }
  return links;
}

function integerParam(query: URLSearchParams, name: string): number | undefined {
  const value = query.getAll(name).at(-1);
  if (value === undefined || !/^\d+$/.test(value)) {
    return undefined;
  }
  return Number.parseInt(value, 10);
}
