// Medplum's MemoryRepository plus an ordered journal of every version written, which the library lacks.
// The journal serves history (instance, type, system), 410 Gone after delete, vread, and transaction rollback.
//
// Why not the library's own history: MemoryRepository.readHistory reverses its stored version array
// in place on every call (fhir-router 5.2.13), so the order flips between calls and later writes land
// out of order; it also ignores _count/_offset, records no deletes, and has no type or system history.
// MemoryRepository.withTransaction runs the callback without rollback, so a failed transaction Bundle
// would leave its earlier entries behind; withTransaction below undoes them from the journal.

import { generateId, gone, isCreated, notFound, OperationOutcomeError } from '@medplum/core';
import type { Operation, SearchRequest, WithId } from '@medplum/core';
import { MemoryRepository } from '@medplum/fhir-router';
import type { CreateResourceOptions, DeleteResourceOptions, ReadHistoryOptions, UpdateResourceOptions } from '@medplum/fhir-router';
import type { Bundle, BundleEntry, OperationOutcome, Parameters, Resource } from '@medplum/fhirtypes';

/** One write, as FHIR history reports it. `resource` is absent for a delete. */
export interface JournalEntry {
  readonly resourceType: string;
  readonly id: string;
  readonly versionId: string;
  readonly lastUpdated: string;
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly resource?: WithId<Resource>;
}

/** Filters shared by the three history levels (`_since`, `_count`, `_offset`). */
export interface HistoryQuery {
  since?: string;
  count?: number;
  offset?: number;
}

export class JournaledRepository extends MemoryRepository {
  private readonly journal: JournalEntry[] = [];
  private readonly versionsByKey = new Map<string, JournalEntry[]>();

  override async createResource<T extends Resource>(
    resource: T,
    options?: CreateResourceOptions,
    update: boolean = false,
  ): Promise<WithId<T>> {
    const written = await super.createResource(resource, options, update);
    this.record(update ? 'PUT' : 'POST', written);
    return written;
  }

  // MemoryRepository.conditionalCreate writes through a private method, bypassing createResource.
  override async conditionalCreate<T extends Resource>(
    resource: T,
    search: SearchRequest<T>,
    options?: CreateResourceOptions,
  ): Promise<{ resource: WithId<T>; outcome: OperationOutcome }> {
    const result = await super.conditionalCreate(resource, search, options);
    if (isCreated(result.outcome)) {
      this.record('POST', result.resource);
    }
    return result;
  }

  override async patchResource<T extends Resource>(
    resourceType: T['resourceType'],
    id: string,
    patch: Operation[] | Parameters,
    options?: UpdateResourceOptions,
  ): Promise<WithId<T>> {
    // The library applies the patch and saves through updateResource, journaled as PUT; relabel it.
    const patched = await super.patchResource<T>(resourceType, id, patch, options);
    const entry = this.versionsByKey.get(keyOf(resourceType, id))?.find((v) => v.versionId === patched.meta?.versionId);
    if (entry) {
      entry.method = 'PATCH';
    }
    return patched;
  }

  override async deleteResource(resourceType: string, id: string, options?: DeleteResourceOptions): Promise<void> {
    await super.deleteResource(resourceType, id, options);
    this.append({ resourceType, id, versionId: generateId(), lastUpdated: new Date().toISOString(), method: 'DELETE' });
  }

  override async readResource<T extends Resource>(resourceType: string, id: string): Promise<T> {
    try {
      return await super.readResource<T>(resourceType, id);
    } catch (err) {
      if (this.latestVersion(resourceType, id)?.method === 'DELETE') {
        throw new OperationOutcomeError(gone);
      }
      throw err;
    }
  }

  override readVersion<T extends Resource>(resourceType: string, id: string, versionId: string): Promise<T> {
    const version = this.versionsByKey.get(keyOf(resourceType, id))?.find((v) => v.versionId === versionId);
    if (!version) {
      return Promise.reject(new OperationOutcomeError(notFound));
    }
    if (!version.resource) {
      return Promise.reject(new OperationOutcomeError(gone));
    }
    return Promise.resolve(structuredClone(version.resource) as unknown as T);
  }

  /** Instance history; the router's `_count`/`_offset` arrive as `limit`/`offset`. */
  override readHistory<T extends Resource>(resourceType: string, id: string, options?: ReadHistoryOptions): Promise<Bundle<T>> {
    const versions = this.versionsByKey.get(keyOf(resourceType, id));
    if (!versions) {
      return Promise.reject(new OperationOutcomeError(notFound));
    }
    return Promise.resolve(historyBundle(versions, { count: options?.limit, offset: options?.offset }) as Bundle<T>);
  }

  typeHistory(resourceType: string, query: HistoryQuery): Bundle {
    return historyBundle(
      this.journal.filter((v) => v.resourceType === resourceType),
      query,
    );
  }

  systemHistory(query: HistoryQuery): Bundle {
    return historyBundle(this.journal, query);
  }

  /** True when the resource exists now (created and not deleted since). */
  isLive(resourceType: string, id: string): boolean {
    const latest = this.latestVersion(resourceType, id);
    return latest !== undefined && latest.method !== 'DELETE';
  }

  /** Resource types with at least one live resource, sorted. */
  liveResourceTypes(): string[] {
    const types = new Set<string>();
    for (const versions of this.versionsByKey.values()) {
      const latest = versions.at(-1);
      if (latest && latest.method !== 'DELETE') {
        types.add(latest.resourceType);
      }
    }
    return [...types].sort();
  }

  // MemoryRepository cannot search several types at once (GET [base]?_type=A,B finds nothing), so
  // run the library's search per type and merge, paging over the merged list.
  override async search<T extends Resource>(searchRequest: SearchRequest<T>): Promise<Bundle<WithId<T>>> {
    const types = searchRequest.types;
    if (!types || types.length === 0) {
      return super.search(searchRequest);
    }
    const entries: BundleEntry<WithId<T>>[] = [];
    let total = 0;
    for (const resourceType of types) {
      const perType = await super.search<T>({ ...searchRequest, resourceType, types: undefined, offset: undefined, count: undefined });
      entries.push(...(perType.entry ?? []));
      total += perType.total ?? 0;
    }
    const start = searchRequest.offset ?? 0;
    const page = entries.slice(start, searchRequest.count === undefined ? undefined : start + searchRequest.count);
    return { resourceType: 'Bundle', type: 'searchset', total, ...(page.length > 0 ? { entry: page } : {}) };
  }

  // Nested calls (a conditional update inside a transaction Bundle) each undo back to their own mark.
  override async withTransaction<TResult>(callback: (repo: this) => Promise<TResult>): Promise<TResult> {
    const mark = this.journal.length;
    try {
      return await super.withTransaction(callback);
    } catch (err) {
      await this.rollBackTo(mark);
      throw err;
    }
  }

  private async rollBackTo(mark: number): Promise<void> {
    while (this.journal.length > mark) {
      const undone = this.journal.pop() as JournalEntry;
      const key = keyOf(undone.resourceType, undone.id);
      const versions = this.versionsByKey.get(key) ?? [];
      versions.pop();
      const previous = versions.at(-1);
      if (versions.length === 0) {
        this.versionsByKey.delete(key);
      }
      if (previous?.resource) {
        const restored = previous.resource;
        // Seeding mode keeps the restored version's versionId and lastUpdated.
        await this.withSeeding(() => super.createResource(structuredClone(restored), undefined, true));
      } else {
        await super.expungeResource(undone.resourceType, undone.id);
      }
    }
  }

  private record(method: JournalEntry['method'], written: WithId<Resource>): void {
    this.append({
      resourceType: written.resourceType,
      id: written.id,
      versionId: written.meta?.versionId ?? '',
      lastUpdated: written.meta?.lastUpdated ?? new Date().toISOString(),
      method,
      resource: structuredClone(written),
    });
  }

  private append(entry: JournalEntry): void {
    this.journal.push(entry);
    const key = keyOf(entry.resourceType, entry.id);
    const versions = this.versionsByKey.get(key);
    if (versions) {
      versions.push(entry);
    } else {
      this.versionsByKey.set(key, [entry]);
    }
  }

  private latestVersion(resourceType: string, id: string): JournalEntry | undefined {
    return this.versionsByKey.get(keyOf(resourceType, id))?.at(-1);
  }
}

function keyOf(resourceType: string, id: string): string {
  return `${resourceType}/${id}`;
}

const responseStatus: Record<JournalEntry['method'], string> = {
  POST: '201 Created',
  PUT: '200 OK',
  PATCH: '200 OK',
  DELETE: '204 No Content',
};

/** Newest first, as FHIR history requires. URLs stay relative; the HTTP layer prefixes the public base. */
function historyBundle(versions: readonly JournalEntry[], query: HistoryQuery): Bundle {
  const since = query.since === undefined ? undefined : Date.parse(query.since);
  const matching = versions.filter((v) => since === undefined || Date.parse(v.lastUpdated) >= since).reverse();
  const start = query.offset ?? 0;
  const page = matching.slice(start, query.count === undefined ? undefined : start + query.count);
  const entry = page.map(
    (v): BundleEntry => ({
      ...(v.resource ? { resource: structuredClone(v.resource) } : {}),
      request: { method: v.method, url: v.method === 'POST' ? v.resourceType : `${v.resourceType}/${v.id}` },
      response: { status: responseStatus[v.method], etag: `W/"${v.versionId}"`, lastModified: v.lastUpdated },
    }),
  );
  return { resourceType: 'Bundle', type: 'history', total: matching.length, ...(entry.length > 0 ? { entry } : {}) };
}
