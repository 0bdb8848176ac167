// Child process: the FHIR server every target forwards to. Keep-alive node:http on loopback;
// answers a Patient search, consumes transaction Bundles, and serves the conformance probes.
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DUPLEX_PATH, ECHO_PATH, PATIENT_SEARCH_PATH, patientSearchBundle, TRANSACTION_PATH, transactionResponse } from './internal/fixtures.ts';
import type { ListeningMessage } from './internal/messages.ts';
import { sampleProcess, sendToParent, serveParent, settle } from './internal/process-stats.ts';

const searchBody = patientSearchBundle();
const searchHeaders = [
  'Content-Type', 'application/fhir+json; charset=utf-8',
  'Content-Length', String(searchBody.length),
  'ETag', 'W/"3"',
  'Last-Modified', 'Wed, 15 Jan 2025 10:21:07 GMT',
  'Cache-Control', 'no-store',
];
const transactionBody = transactionResponse(1);
const transactionHeaders = [
  'Content-Type', 'application/fhir+json; charset=utf-8',
  'Content-Length', String(transactionBody.length),
];

function answerSearch(res: ServerResponse): void {
  res.writeHead(200, searchHeaders);
  res.end(searchBody);
}

// Reads the whole body (that is the upstream's job, not the forwarder's) and checks its length.
function answerTransaction(req: IncomingMessage, res: ServerResponse): void {
  let received = 0;
  req.on('data', (chunk: Buffer) => {
    received += chunk.length;
  });
  req.on('end', () => {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) !== received) {
      res.writeHead(400, { 'content-length': '0' });
      res.end();
      return;
    }
    res.writeHead(200, transactionHeaders);
    res.end(transactionBody);
  });
}

// Conformance probe: says what arrived, and answers with one end-to-end and one hop-by-hop header.
function answerEcho(req: IncomingMessage, res: ServerResponse): void {
  let bodyBytes = 0;
  req.on('data', (chunk: Buffer) => {
    bodyBytes += chunk.length;
  });
  req.on('end', () => {
    const body = Buffer.from(JSON.stringify({ method: req.method, url: req.url, rawHeaders: req.rawHeaders, bodyBytes }));
    res.writeHead(200, [
      'Content-Type', 'application/json',
      'Content-Length', String(body.length),
      'X-End-To-End', 'kept',
      'X-Upstream-Hop', 'dropped',
      'Connection', 'X-Upstream-Hop',
    ]);
    res.end(body);
  });
}

// Conformance probe: echoes each request chunk as it arrives. A forwarder that buffers either
// body deadlocks here, because the client sends its next chunk only after the echo of the last.
function answerDuplex(req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  req.on('data', (chunk: Buffer) => res.write(chunk));
  req.on('end', () => res.end());
}

function route(req: IncomingMessage, res: ServerResponse): void {
  if (req.method === 'GET' && req.url === PATIENT_SEARCH_PATH) return answerSearch(res);
  if (req.method === 'POST' && req.url === TRANSACTION_PATH) return answerTransaction(req, res);
  if (req.method === 'POST' && req.url === ECHO_PATH) return answerEcho(req, res);
  if (req.method === 'POST' && req.url === DUPLEX_PATH) return answerDuplex(req, res);
  res.writeHead(404, { 'content-length': '0' });
  res.end();
}

async function main(): Promise<void> {
  serveParent();
  const server = createServer(route);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  await settle(100);
  const listening: ListeningMessage = { type: 'listening', port: (server.address() as AddressInfo).port, idle: sampleProcess(true) };
  sendToParent(listening);
}

await main();
