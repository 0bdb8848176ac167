// `fhirmesh validate FILE...`: checks FhirRoute manifests with the same validation and conflict
// rules the proxy and controller apply, and says what to fix.

import fs from 'node:fs';
import { compileRoutes, formatManifestProblem, parseRouteManifests } from '../../../api/index.ts';

export function validateCommand(files: string[]): number {
  if (files.length === 0) {
    process.stderr.write('usage: fhirmesh validate FILE [FILE...]\n');
    return 2;
  }
  let failed = false;
  const routes = [];
  for (const file of files) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      process.stderr.write(`${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})\n`);
      failed = true;
      continue;
    }
    const parsed = parseRouteManifests(text, file);
    for (const problem of parsed.problems) {
      process.stderr.write(`${formatManifestProblem(problem)}\n`);
      failed = true;
    }
    routes.push(...parsed.routes);
  }
  // References (CA files, Secrets, Services) are checked where they live: by the proxy or controller.
  const result = compileRoutes(routes, { file: () => '', secret: () => '', service: () => ({ exists: true }) });
  for (const r of result.results) {
    if (r.accepted) {
      process.stdout.write(`${r.key}: ok\n`);
    } else {
      process.stderr.write(`${r.key}: ${r.acceptedReason}: ${r.message}\n`);
      failed = true;
    }
  }
  return failed ? 1 : 0;
}
