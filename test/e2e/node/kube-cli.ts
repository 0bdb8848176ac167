// kubectl and helm as a platform team runs them (the e2e suite's commands are docs/install.md's),
// plus plain HTTP to cluster IPs (the test process runs inside the cluster's network namespace).

import { execFile } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { e2eContext } from './e2e-context.ts';

const run = promisify(execFile);
export const REPO_ROOT = path.resolve(import.meta.dirname, '../../..');

async function cli(binary: string, args: string[], input?: string, timeoutMs = 300_000): Promise<string> {
  const { kubeconfig } = e2eContext();
  const child = run(binary, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, cwd: REPO_ROOT, env: { ...process.env, KUBECONFIG: kubeconfig } });
  if (input !== undefined) {
    child.child.stdin?.end(input);
  }
  try {
    return (await child).stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${path.basename(binary)} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}${e.stdout ? `\n${e.stdout.slice(-2000)}` : ''}`, { cause: err });
  }
}

export function kubectl(args: string[], input?: string): Promise<string> {
  return cli(e2eContext().kubectl, args, input);
}

export async function kubectlJson<T = Record<string, unknown>>(args: string[]): Promise<T> {
  return JSON.parse(await kubectl([...args, '-o', 'json'])) as T;
}

/** kubectl apply of objects (JSON is YAML). */
export function apply(...objects: unknown[]): Promise<string> {
  return kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
}

export function helm(args: string[]): Promise<string> {
  return cli(e2eContext().helm, args, undefined, 600_000);
}

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTP/1.1 request with exactly these headers (Host included, which fetch may not set). */
export function httpRequest(url: string, options: { method?: string; headers?: Record<string, string>; body?: Buffer } = {}): Promise<HttpAnswer> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: target.hostname, port: target.port, path: target.pathname + target.search, method: options.method ?? 'GET', headers: options.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(15_000, () => req.destroy(new Error(`${url}: no answer within 15 s`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

export async function postJson<T>(url: string, body: unknown): Promise<T> {
  const answer = await httpRequest(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: Buffer.from(JSON.stringify(body)) });
  if (answer.status !== 200) throw new Error(`POST ${url} answered ${answer.status}: ${answer.body.toString('utf8')}`);
  return JSON.parse(answer.body.toString('utf8')) as T;
}
