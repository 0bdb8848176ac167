// Public surface of compile/: the pure translator from a source's state to route verdicts and the
// per-namespace tables proxies run.

export { translate, Translation } from './route-translator.ts';
export type { ScopedTable, TableEntry } from './scoped-table.ts';
