// Runs the real fhirmesh-proxy binary (Node 24 from node_modules, proxy/src/main.ts) as a child
// process for tests: waits for "proxy listening", exposes its URLs, log lines, RSS, signals and exit.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runToExit, startLogged, type ExitStatus, type LoggedProcess } from './logged-process.ts';

const PROXY_MAIN = path.resolve(import.meta.dirname, '../../proxy/src/main.ts');

export interface SpawnProxyOptions {
  /** Passed as --routes; omit to rely on FHIRMESH_ROUTES in `env`. */
  routesFile?: string;
  /** --listen value (default 127.0.0.1:0); null leaves the flag out. */
  listen?: string | null;
  /** --admin-listen value (default 127.0.0.1:0); null leaves the flag out. */
  adminListen?: string | null;
  /** --intermediary-id (default gw-test); null leaves the flag out. */
  intermediaryId?: string | null;
  /** Further flags, e.g. ['--shutdown-grace', '1']. */
  args?: string[];
  /** Added to the environment; the test's own FHIRMESH_* variables are never inherited. */
  env?: Record<string, string>;
  readyTimeoutMs?: number;
}

export interface SpawnedProxy extends LoggedProcess {
  url: string;
  adminUrl: string;
  /** Resident set size in bytes, from /proc/<pid>/status VmRSS. */
  rssBytes(): number;
}

function proxyArgs(options: SpawnProxyOptions): string[] {
  const args: string[] = [];
  if (options.routesFile !== undefined) args.push('--routes', options.routesFile);
  const listen = options.listen === undefined ? '127.0.0.1:0' : options.listen;
  if (listen !== null) args.push('--listen', listen);
  const adminListen = options.adminListen === undefined ? '127.0.0.1:0' : options.adminListen;
  if (adminListen !== null) args.push('--admin-listen', adminListen);
  const intermediaryId = options.intermediaryId === undefined ? 'gw-test' : options.intermediaryId;
  if (intermediaryId !== null) args.push('--intermediary-id', intermediaryId);
  return [...args, ...(options.args ?? [])];
}

/** The real proxy binary, resolved once it logs "proxy listening" (which names its URLs). */
export async function spawnProxy(options: SpawnProxyOptions): Promise<SpawnedProxy> {
  const { process: proxy, ready } = await startLogged('proxy', PROXY_MAIN, proxyArgs(options), {
    env: options.env,
    ready: (line) => line.msg === 'proxy listening',
    readyTimeoutMs: options.readyTimeoutMs ?? 10_000,
  });
  if (typeof ready.url !== 'string' || typeof ready.adminUrl !== 'string') {
    await proxy.kill();
    throw new Error(`"proxy listening" line without url/adminUrl: ${JSON.stringify(ready)}`);
  }
  return { ...proxy, url: ready.url, adminUrl: ready.adminUrl, rssBytes: () => rssBytesOf(proxy.pid) };
}

/** Runs the proxy binary to completion (for flags it must refuse); kills it after timeoutMs. */
export function runProxyToExit(args: string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<ExitStatus & { stdout: string; stderr: string }> {
  return runToExit(PROXY_MAIN, args, options);
}

export function rssBytesOf(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (m === null) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/** A temp directory holding routes.yaml, rewritten the way editors and ConfigMap mounts do. */
export interface RoutesDir {
  dir: string;
  file: string;
  /** Write a temp file beside it, then rename over it: the proxy never sees half a file. */
  write(yaml: string): void;
  remove(): void;
}

export function makeRoutesDir(yaml: string): RoutesDir {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-proc-'));
  const file = path.join(dir, 'routes.yaml');
  fs.writeFileSync(file, yaml);
  let writes = 0;
  return {
    dir,
    file,
    write(text) {
      const tmp = path.join(dir, `.routes.yaml.${++writes}.tmp`);
      fs.writeFileSync(tmp, text);
      fs.renameSync(tmp, file);
    },
    remove() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
