// Holds the table in force and swaps it atomically: a request reads `current` once at its start
// and finishes on that table whatever arrives meanwhile (fail-static: a refused table changes nothing).

import type { RouteTableSnapshot } from '../../../api/index.ts';
import { RouteTable } from './route-table.ts';

export type TableListener = (table: RouteTable) => void;

export class TableHolder {
  #current: RouteTable = RouteTable.empty();
  #loaded = false;
  /** Since when (ms since the epoch) the table has not been known current; undefined while it is. */
  #staleSinceMs: number | undefined = Date.now();
  readonly #listeners: TableListener[] = [];
  readonly #checks: TableListener[] = [];

  get current(): RouteTable {
    return this.#current;
  }

  /** Ready once any valid table has been installed, even an empty one. */
  get loaded(): boolean {
    return this.#loaded;
  }

  /**
   * Builds the lookup maps and runs every check first (a backend whose TLS material does not load,
   * say), so a snapshot that is refused, and NACKed, is never in force even for a moment.
   */
  install(snapshot: RouteTableSnapshot): RouteTable {
    const table = new RouteTable(snapshot);
    for (const check of this.#checks) check(table);
    this.#current = table;
    this.#loaded = true;
    for (const listener of this.#listeners) listener(table);
    return table;
  }

  /** The source says the table in force is its current one (applied, or confirmed unchanged). */
  confirmed(): void {
    this.#staleSinceMs = undefined;
  }

  /** The source cannot vouch for the table any more (stream lost, new table refused); idempotent. */
  unconfirmed(atMs: number = Date.now()): void {
    this.#staleSinceMs ??= atMs;
  }

  /** 0 while the table is known current, else the seconds since it stopped being so. */
  staleSeconds(nowMs: number = Date.now()): number {
    return this.#staleSinceMs === undefined ? 0 : Math.max(0, (nowMs - this.#staleSinceMs) / 1000);
  }

  onInstall(listener: TableListener): void {
    this.#listeners.push(listener);
  }

  /** Runs before a table is put in force; throwing refuses it (the message says why). */
  checkBeforeInstall(check: TableListener): void {
    this.#checks.push(check);
  }
}
