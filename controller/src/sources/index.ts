// Public surface of sources/: the RouteSource contract and the directory source of standalone mode
// (the Kubernetes source lives in kubernetes/ and plugs in through ../kubernetes-seam.ts).

export type { RouteSource, SourceState } from './route-source.ts';
export { DirectorySource, type DirectorySourceOptions } from './directory-source.ts';
