// The programs the benchmark drives, made present before anything is measured: wrk, nginx and
// HAProxy from Debian's packages, fortio built once from the Go module proxy and cached, and
// fhirmesh's compiled dist/ (rebuilt only when a source is newer).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

// fortio@latest does not build from the module proxy here; this pinned version does.
const FORTIO_VERSION = 'v1.66.0';
const FORTIO_DIR = join(homedir(), '.cache', 'fhirmesh', 'fortio', FORTIO_VERSION);

export interface Tools {
  readonly wrk: string;
  readonly nginx: string;
  readonly haproxy: string;
  readonly fortio: string;
  readonly versions: Readonly<Record<string, string>>;
}

function which(command: string): string | null {
  const result = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  const found = result.stdout.trim();
  return result.status === 0 && found !== '' ? found : null;
}

function run(command: string, args: readonly string[], what: string, env: NodeJS.ProcessEnv = process.env): string {
  const result = spawnSync(command, args, { encoding: 'utf8', env, maxBuffer: 16 * 1024 * 1024 });
  if (result.error !== undefined || result.status !== 0) {
    const detail = result.error?.message ?? `${result.stderr}${result.stdout}`.trim().split('\n').slice(-5).join('\n');
    throw new Error(`${what} failed (${command} ${args.join(' ')}):\n${detail}`);
  }
  return `${result.stdout}${result.stderr}`;
}

/** Debian package per program; installed with apt-get when the program is missing. */
const DEBIAN_PACKAGES: Readonly<Record<'wrk' | 'nginx' | 'haproxy', string>> = { wrk: 'wrk', nginx: 'nginx', haproxy: 'haproxy' };

function ensureDebianPrograms(): void {
  const missing = (Object.keys(DEBIAN_PACKAGES) as (keyof typeof DEBIAN_PACKAGES)[]).filter((program) => which(program) === null && !existsSync(`/usr/sbin/${program}`));
  if (missing.length === 0) return;
  const packages = missing.map((program) => DEBIAN_PACKAGES[program]);
  if (process.getuid?.() !== 0) throw new Error(`missing ${missing.join(', ')}: run as root, or apt-get install ${packages.join(' ')} first`);
  console.log(`installing ${packages.join(', ')} (Debian packages)`);
  // RUNLEVEL=1: the packages' init scripts must not start a system nginx or HAProxy on port 80.
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', RUNLEVEL: '1' };
  run('apt-get', ['update', '-qq'], 'apt-get update', env);
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], `apt-get install ${packages.join(' ')}`, env);
}

function ensureFortio(): string {
  const binary = join(FORTIO_DIR, 'fortio');
  if (existsSync(binary)) return binary;
  if (which('go') === null) throw new Error(`fortio ${FORTIO_VERSION} is not in ${FORTIO_DIR} and there is no Go toolchain to build it: install Go, or put a fortio binary there`);
  console.log(`building fortio ${FORTIO_VERSION} into ${FORTIO_DIR} (once; about a minute)`);
  run('go', ['install', `fortio.org/fortio@${FORTIO_VERSION}`], 'go install fortio', { ...process.env, GOBIN: FORTIO_DIR });
  return binary;
}

function newestMtimeMs(directory: string): number {
  let newest = 0;
  for (const entry of readdirSync(directory, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/** `npm run build` when dist/ is missing or older than any source it is built from. */
export function ensureBuilt(repoRoot: string): void {
  const proxyMain = join(repoRoot, 'dist/proxy/src/main.js');
  const controllerMain = join(repoRoot, 'dist/controller/src/main.js');
  if (existsSync(proxyMain) && existsSync(controllerMain)) {
    const built = Math.min(statSync(proxyMain).mtimeMs, statSync(controllerMain).mtimeMs);
    const sources = Math.max(...['api', 'proxy/src', 'controller/src'].map((dir) => newestMtimeMs(join(repoRoot, dir))));
    if (sources <= built) return;
  }
  console.log('building dist/ (npm run build): fhirmesh is measured compiled, as the image runs it');
  run('npm', ['run', 'build', '--silent'], 'npm run build');
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}

export function ensureTools(): Tools {
  ensureDebianPrograms();
  const fortio = ensureFortio();
  const wrk = which('wrk') ?? '/usr/bin/wrk';
  const nginx = which('nginx') ?? '/usr/sbin/nginx';
  const haproxy = which('haproxy') ?? '/usr/sbin/haproxy';
  // wrk -v prints its version and exits 1.
  const wrkVersion = firstLine(spawnSync(wrk, ['-v'], { encoding: 'utf8' }).stdout);
  return {
    wrk,
    nginx,
    haproxy,
    fortio,
    versions: {
      wrk: wrkVersion,
      nginx: firstLine(run(nginx, ['-v'], 'nginx -v')),
      haproxy: firstLine(run(haproxy, ['-v'], 'haproxy -v')),
      fortio: firstLine(run(fortio, ['version'], 'fortio version')),
    },
  };
}
