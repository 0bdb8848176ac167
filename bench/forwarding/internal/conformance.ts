// Checks, before any load, that a forwarder really does a reverse proxy's job, so the
// benchmark compares equal work: hop-by-hop headers dropped both ways, Host set to the
// upstream, Via appended, end-to-end headers kept, and both bodies streamed, not buffered.
import { request } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { DUPLEX_PATH, ECHO_PATH } from './fixtures.ts';
import { VIA_TOKEN } from './forward-headers.ts';

export interface ConformanceResult {
  readonly passed: boolean;
  readonly failures: readonly string[];
}

const PROBE_TIMEOUT_MS = 5_000;

interface EchoedRequest {
  readonly rawHeaders: string[];
  readonly bodyBytes: number;
}

function headerValues(rawHeaders: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() === name) values.push(rawHeaders[i + 1] as string);
  }
  return values;
}

function readAll(res: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
  });
}

async function checkHeaderRules(forwarderPort: number, upstreamPort: number): Promise<string[]> {
  const failures: string[] = [];
  const bodyChunk = Buffer.alloc(10_000, 'a');
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port: forwarderPort,
      method: 'POST',
      path: ECHO_PATH,
      agent: false,
      timeout: PROBE_TIMEOUT_MS,
      headers: [
        'Host', `127.0.0.1:${forwarderPort}`,
        'Connection', 'keep-alive, X-Strip-Me',
        'X-Strip-Me', 'meant-for-this-hop',
        'Keep-Alive', 'timeout=5',
        'TE', 'trailers',
        'Proxy-Authorization', 'Basic Zm9vOmJhcg==',
        'Authorization', 'Bearer end-to-end',
        'Via', '1.0 originator',
        'X-Keep-Me', 'yes',
        'Content-Type', 'application/fhir+json',
        'Transfer-Encoding', 'chunked',
      ],
    });
    req.on('response', resolve);
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.write(bodyChunk);
    req.end(bodyChunk);
  });
  const echoed = JSON.parse((await readAll(response)).toString('utf8')) as EchoedRequest;
  const upstreamSaw = echoed.rawHeaders;

  if (response.statusCode !== 200) failures.push(`status ${response.statusCode}, expected 200`);
  const hosts = headerValues(upstreamSaw, 'host');
  if (hosts.length !== 1 || hosts[0] !== `127.0.0.1:${upstreamPort}`) failures.push(`upstream saw Host ${JSON.stringify(hosts)}`);
  const via = headerValues(upstreamSaw, 'via').join(', ');
  if (via !== `1.0 originator, ${VIA_TOKEN}`) failures.push(`upstream saw Via '${via}'`);
  for (const hopByHop of ['x-strip-me', 'keep-alive', 'te', 'proxy-authorization']) {
    if (headerValues(upstreamSaw, hopByHop).length > 0) failures.push(`hop-by-hop ${hopByHop} reached the upstream`);
  }
  if (headerValues(upstreamSaw, 'connection').some((value) => /x-strip-me/i.test(value))) failures.push('Connection options reached the upstream');
  if (headerValues(upstreamSaw, 'authorization')[0] !== 'Bearer end-to-end') failures.push('Authorization was not kept');
  if (headerValues(upstreamSaw, 'x-keep-me')[0] !== 'yes') failures.push('an end-to-end header was not kept');
  if (echoed.bodyBytes !== bodyChunk.length * 2) failures.push(`upstream got ${echoed.bodyBytes} body bytes of ${bodyChunk.length * 2}`);
  if (headerValues(response.rawHeaders, 'x-upstream-hop').length > 0) failures.push('a response hop-by-hop header reached the client');
  if (headerValues(response.rawHeaders, 'x-end-to-end')[0] !== 'kept') failures.push('a response end-to-end header was not kept');
  return failures;
}

// Sends each request chunk only after the upstream's echo of the previous one came back.
async function checkFullDuplexStreaming(forwarderPort: number): Promise<string[]> {
  const chunk = Buffer.alloc(16 * 1024, 'b');
  const rounds = 8;
  return new Promise((resolve) => {
    let sent = 0;
    let echoed = 0;
    const timer = setTimeout(() => {
      req.destroy();
      resolve([`full-duplex probe stalled after ${echoed} of ${rounds * chunk.length} bytes: a body is being buffered`]);
    }, PROBE_TIMEOUT_MS);
    const req = request({ host: '127.0.0.1', port: forwarderPort, method: 'POST', path: DUPLEX_PATH, agent: false, headers: { 'transfer-encoding': 'chunked' } });
    req.on('error', (error: Error) => {
      clearTimeout(timer);
      resolve([`full-duplex probe failed: ${error.message}`]);
    });
    req.on('response', (res: IncomingMessage) => {
      res.on('data', (data: Buffer) => {
        echoed += data.length;
        if (echoed < sent) return;
        if (sent < rounds * chunk.length) {
          sent += chunk.length;
          req.write(chunk);
          if (sent === rounds * chunk.length) req.end();
        }
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve(echoed === rounds * chunk.length ? [] : [`full-duplex probe got ${echoed} bytes back`]);
      });
    });
    sent += chunk.length;
    req.write(chunk);
  });
}

export async function checkConformance(forwarderPort: number, upstreamPort: number): Promise<ConformanceResult> {
  const failures = [...(await checkHeaderRules(forwarderPort, upstreamPort)), ...(await checkFullDuplexStreaming(forwarderPort))];
  return { passed: failures.length === 0, failures };
}
