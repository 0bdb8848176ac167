// Public surface of sources/: the RouteWatcher contract and the directory source of standalone mode
// (the Kubernetes one lives in kubernetes/, which ../create-mode.ts loads only in Kubernetes mode).

export { notifyListeners, type ChangeListener, type RouteWatcher, type SourceState } from './route-watcher.ts';
export { DEFAULT_DIRECTORY_POLL_MS, DirectorySource, type DirectorySourceOptions } from './directory-source.ts';
export { SortedKeys } from './sorted-keys.ts';
