// The standalone source: one FhirRoute per file in one directory (the controller's --routes-dir).
// An edit writes the new file beside it and renames it over the old one, as editors and ConfigMap
// mounts do, so the controller never reads half a file.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { routeYaml } from './routes.ts';
import type { MeshSource, RouteRef } from './routes.ts';

export function directoryMesh(workDir: string, routes: readonly RouteRef[], backendUrl: string): MeshSource {
  const started = performance.now();
  const directory = join(workDir, 'routes');
  mkdirSync(directory, { recursive: true });
  const fileOf = (route: RouteRef): string => join(directory, `${route.namespace}-${route.name}.yaml`);
  for (const route of routes) writeFileSync(fileOf(route), routeYaml(route, backendUrl));
  const edit = (route: RouteRef, url: string): void => {
    const file = fileOf(route);
    // Not *.yaml: the controller must not read the temporary file as a route file.
    writeFileSync(`${file}.tmp`, routeYaml(route, url));
    renameSync(`${file}.tmp`, file);
  };
  return {
    kind: 'directory',
    controllerArgs: ['--routes-dir', directory],
    controllerEnv: {},
    setupMs: performance.now() - started,
    edit: async (route, url) => edit(route, url),
    editMany: async (edits) => {
      for (const [route, url] of edits) edit(route, url);
    },
    pids: () => [],
    stop: async () => undefined,
  };
}
