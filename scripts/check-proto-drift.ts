// Fails when api/generated no longer matches api/fhirmesh/v1/*.proto: regenerates into a temp dir
// with the same command as `npm run gen:proto` and compares every file.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const committed = path.join(root, 'api/generated');
const fresh = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-proto-'));
try {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const command = (pkg.scripts['gen:proto'] ?? '').replace('--outDir=api/generated', `--outDir=${fresh}`);
  const [bin, ...args] = command.split(' ');
  execFileSync(path.join(root, 'node_modules/.bin', bin ?? ''), args, { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  const list = (dir: string): string[] =>
    fs.readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith('.ts'))
      .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
      .sort();
  const want = list(fresh);
  const have = list(committed);
  const drift = [
    ...want.filter((f) => !have.includes(f)).map((f) => `missing: api/generated/${f}`),
    ...have.filter((f) => !want.includes(f)).map((f) => `stale: api/generated/${f}`),
    ...want.filter((f) => have.includes(f) && fs.readFileSync(path.join(fresh, f), 'utf8') !== fs.readFileSync(path.join(committed, f), 'utf8')).map((f) => `changed: api/generated/${f}`),
  ];
  if (drift.length > 0) {
    console.error(`generated gRPC types are out of date with the .proto; run npm run gen:proto and commit:\n  ${drift.join('\n  ')}`);
    process.exit(1);
  }
} finally {
  fs.rmSync(fresh, { recursive: true, force: true });
}
