// Holds the table in force and swaps it atomically: a request reads `current` once at its start
// and finishes on that table whatever arrives meanwhile (fail-static: a refused table changes nothing).

import type { RouteTableSnapshot } from '../../../api/index.ts';
import { RouteTable } from './route-table.ts';

export type TableListener = (table: RouteTable) => void;

export class TableHolder {
  #current: RouteTable = RouteTable.empty();
  #loaded = false;
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

  onInstall(listener: TableListener): void {
    this.#listeners.push(listener);
  }

  /** Runs before a table is put in force; throwing refuses it (the message says why). */
  checkBeforeInstall(check: TableListener): void {
    this.#checks.push(check);
  }
}
