// The table one namespace's proxies run, keyed by destination id, each route with its wire form
// (encoded once, shared by every stream) and a fingerprint that says whether a route changed.

import type { Route } from '../../../api/discovery/index.ts';
import type { CompiledRoute } from '../../../api/index.ts';

export interface TableEntry {
  readonly route: CompiledRoute;
  /** fhirmesh.v1.Route, ready to send. */
  readonly wire: Route;
  /** Content hash of the compiled route: equal fingerprints, nothing to upsert. */
  readonly fingerprint: string;
}

export interface ScopedTable {
  readonly namespace: string;
  /** compileRoutes' content hash of the scoped table: proxies in one namespace share versions. */
  readonly version: string;
  /** By destination id, in destination-id order. */
  readonly entries: ReadonlyMap<string, TableEntry>;
}
