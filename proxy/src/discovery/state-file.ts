// The last good table on disk, so a proxy restarted while the controller is away still serves.
// Stored in wire form and decoded on load with the same checks as a pushed table; mode 0600 (keys).

import fs from 'node:fs';
import path from 'node:path';
import { decodeRoute, encodeRoute, Interner, type Route__Output } from '../../../api/discovery/index.ts';
import type { CompiledRoute, RouteTableSnapshot } from '../../../api/index.ts';

const FILE_NAME = 'route-table.json';
const FORMAT = 'fhirmesh.route-table/v1';

interface StateFile {
  format: typeof FORMAT;
  version: string;
  savedAt: string;
  routes: Route__Output[];
}

export function stateFilePath(stateDir: string): string {
  return path.join(stateDir, FILE_NAME);
}

/** Routes serialised per write: a large table is written in pieces, between which requests run. */
const ROUTES_PER_WRITE = 500;

/**
 * Written to a temp file, flushed, then renamed over the old one: a crash leaves old or new, never
 * half. Asynchronous and in pieces, so a 100,000-route table never holds the event loop.
 */
export async function saveState(stateDir: string, version: string, routes: readonly CompiledRoute[]): Promise<void> {
  await fs.promises.mkdir(stateDir, { recursive: true, mode: 0o700 });
  const target = stateFilePath(stateDir);
  const tmp = `${target}.${process.pid}.tmp`;
  const file = await fs.promises.open(tmp, 'w', 0o600);
  try {
    const header: Omit<StateFile, 'routes'> = { format: FORMAT, version, savedAt: new Date().toISOString() };
    await file.write(`${JSON.stringify(header).slice(0, -1)},"routes":[`);
    for (let i = 0; i < routes.length; i += ROUTES_PER_WRITE) {
      // Stored in wire form (what a restarted proxy decodes with the same checks as a pushed table).
      const piece = routes.slice(i, i + ROUTES_PER_WRITE).map((route) => JSON.stringify(encodeRoute(route))).join(',');
      await file.write(i === 0 ? piece : `,${piece}`);
    }
    await file.write(']}');
    await file.sync();
  } finally {
    await file.close();
  }
  await fs.promises.rename(tmp, target);
}

/** Undefined when there is no state yet; throws with a reason when the file is unusable. */
export function loadState(stateDir: string): { snapshot: RouteTableSnapshot } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(stateFilePath(stateDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const parsed = JSON.parse(text) as Partial<StateFile>;
  if (parsed.format !== FORMAT || typeof parsed.version !== 'string' || !Array.isArray(parsed.routes)) {
    throw new Error(`${stateFilePath(stateDir)} is not a ${FORMAT} file`);
  }
  const intern = new Interner();
  return { snapshot: { version: parsed.version, routes: parsed.routes.map((route) => decodeRoute(route, intern)) } };
}
