// The e2e suite's workloads, run from a ConfigMap by the fhirmesh image's node (type stripping; the
// image has no shell). Modes:
//   destination PORT NAME   a small FHIR server: deterministic reads, POST/PUT echo the body byte for byte
//   driver PORT             sends requests through $FHIRMESH_PROXY_URL for the test (POST /request), or
//                           steadily until told to stop (POST /load/start, POST /load/stop)
//   once DESTINATION        one echo through the proxy; exits 0 when the bytes come back unchanged (a Job)

import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';

interface ProxyRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: Buffer;
}

interface ProxyAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

interface Load {
  ok: number;
  failed: number;
  failures: string[];
  running: boolean;
  done?: () => void;
}

// A FHIR Bundle with non-ASCII text, odd spacing and key order: any re-encoding on the way would show.
const ECHO_BODY = Buffer.from(
  '{"resourceType":"Bundle",  "type":"collection","entry":[{"resource":{"resourceType":"Patient","id":"p1",' +
    '"name":[{"family":"Müller-Ødegård","given":["Zoë","李"]}],"birthDate":"1970-01-01"}}],\n"meta":{"tag":[{"code":"e2e ✓"}]}}\n',
);
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 4 });
const [mode, arg1, arg2] = process.argv.slice(2);

function readBody(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: Buffer): void {
  res.writeHead(status, { 'Content-Length': String(body.length), ...headers });
  res.end(body);
}

function json(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, { 'Content-Type': 'application/json' }, Buffer.from(JSON.stringify(value)));
}

/** One request to the pod's proxy; rejects on a network error or after 10 s. */
function viaProxy({ method = 'GET', path = '/', headers = {}, body }: ProxyRequest): Promise<ProxyAnswer> {
  const base = new URL(process.env['FHIRMESH_PROXY_URL'] ?? 'http://127.0.0.1:15001');
  return new Promise((resolve, reject) => {
    const req = http.request({ host: base.hostname, port: base.port, method, path, headers, agent: keepAlive }, (res) => {
      readBody(res).then((bytes) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: bytes }), reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timed out after 10 s')));
    req.on('error', reject);
    req.end(body);
  });
}

async function serveDestination(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
  const url = req.url ?? '/';
  const body = await readBody(req);
  const seen = { 'X-Seen-Path': url, 'X-Seen-Host': req.headers.host ?? '', 'X-Destination-Name': name };
  if (!url.startsWith('/fhir/')) return send(res, 404, { 'Content-Type': 'text/plain', ...seen }, Buffer.from('not under /fhir\n'));
  if (req.method === 'POST' || req.method === 'PUT') {
    return send(res, req.method === 'POST' ? 201 : 200, { 'Content-Type': req.headers['content-type'] ?? 'application/octet-stream', ...seen }, body);
  }
  const [, , type = '', id = ''] = (url.split('?')[0] ?? '').split('/');
  const resource = type === 'metadata' ? { resourceType: 'CapabilityStatement', status: 'active', kind: 'instance', software: { name } } : { resourceType: type, id, meta: { source: name } };
  send(res, 200, { 'Content-Type': 'application/fhir+json; charset=utf-8', ...seen }, Buffer.from(JSON.stringify(resource)));
}

let load: Load | undefined;

async function serveDriver(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const input = JSON.parse((await readBody(req)).toString('utf8') || '{}') as ProxyRequest & { bodyBase64?: string; intervalMs?: number };
  const request: ProxyRequest = { ...input, ...(input.bodyBase64 === undefined ? {} : { body: Buffer.from(input.bodyBase64, 'base64') }) };
  if (req.url === '/request') {
    try {
      const answer = await viaProxy(request);
      return json(res, 200, { status: answer.status, headers: answer.headers, bodyBase64: answer.body.toString('base64') });
    } catch (err) {
      return json(res, 502, { error: String(err) });
    }
  }
  if (req.url === '/load/start') {
    if (load !== undefined) return json(res, 409, { error: 'already running' });
    const current: Load = { ok: 0, failed: 0, failures: [], running: true };
    load = current;
    void (async () => {
      while (current.running) {
        const started = Date.now();
        try {
          const answer = await viaProxy(request);
          if (answer.status === 200) current.ok++;
          else {
            current.failed++;
            if (current.failures.length < 10) current.failures.push(`status ${answer.status}: ${answer.body.toString('utf8').slice(0, 200)}`);
          }
        } catch (err) {
          current.failed++;
          if (current.failures.length < 10) current.failures.push(String(err));
        }
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, (input.intervalMs ?? 20) - (Date.now() - started))));
      }
      current.done?.();
    })();
    return json(res, 200, { started: true });
  }
  if (req.url === '/load/stop') {
    const current = load;
    if (current === undefined) return json(res, 409, { error: 'not running' });
    load = undefined;
    await new Promise<void>((resolve) => {
      current.done = resolve;
      current.running = false;
    });
    return json(res, 200, { ok: current.ok, failed: current.failed, failures: current.failures });
  }
  json(res, 404, { error: 'POST /request, /load/start or /load/stop' });
}

if (mode === 'destination') {
  const name = arg2 ?? 'destination';
  http.createServer((req, res) => void serveDestination(req, res, name)).listen(Number(arg1), '0.0.0.0', () => console.log(`destination ${name} listening on ${arg1}`));
} else if (mode === 'driver') {
  http.createServer((req, res) => void serveDriver(req, res)).listen(Number(arg1), '0.0.0.0', () => console.log(`driver listening on ${arg1}, proxy ${process.env['FHIRMESH_PROXY_URL']}`));
} else if (mode === 'once') {
  const answer = await viaProxy({ method: 'POST', path: '/Bundle', headers: { 'X-Destination': arg1 ?? '', 'Content-Type': 'application/fhir+json' }, body: ECHO_BODY });
  const same = answer.status === 201 && answer.body.equals(ECHO_BODY);
  console.log(JSON.stringify({ status: answer.status, bytes: answer.body.length, same }));
  keepAlive.destroy();
  process.exit(same ? 0 : 1);
} else {
  console.error('usage: fhir-peer.mts destination PORT NAME | driver PORT | once DESTINATION');
  process.exit(2);
}
