// The real proxy process streams bodies both ways without holding them: a 1 GiB chunked upload and a
// 1 GiB download pass intact (byte count; sha256 on a 64 MiB body) while the proxy's RSS, sampled from
// /proc/<pid>/status, stays within 128 MiB (RSS_GROWTH_LIMIT) of its idle figure.

import { createHash, type Hash } from 'node:crypto';
import http from 'node:http';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeYaml } from '../support/proxy-fixture.ts';
import { makeRoutesDir, spawnProxy, type RoutesDir, type SpawnedProxy } from '../support/spawn-proxy.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const HASHED_BYTES = 64 * MiB;
/**
 * The proxy may grow by at most this much above its idle RSS while a body streams through it. Its JS
 * heap stays flat (~12 MiB used); what grows is socket read buffers (external memory) waiting for a
 * GC. Measured on 2 cores: peaks of 45-72 MiB, up to 97 MiB with both cores busy elsewhere, and no
 * larger for a 4 GiB body than for 256 MiB; a proxy that held a body would grow by the body's size.
 */
const RSS_GROWTH_LIMIT = 128 * MiB;
const CHUNK = 256 * 1024;
const PATTERN = Buffer.from(Array.from({ length: CHUNK }, (_, i) => (i * 7 + (i >> 8)) & 0xff));

/** Chunk n of a generated body: the pattern with n stamped in front, so chunks differ and order shows. */
function chunkAt(index: number, bytes: number): Buffer {
  const chunk = Buffer.from(PATTERN.subarray(0, bytes));
  if (bytes >= 8) chunk.writeBigUInt64BE(BigInt(index), 0);
  return chunk;
}

/** `total` bytes made chunk by chunk as the consumer pulls; nothing is ever held whole. */
function generatedBody(total: number, hash?: Hash): Readable {
  let sent = 0;
  let index = 0;
  return new Readable({
    highWaterMark: CHUNK,
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      const chunk = chunkAt(index++, Math.min(CHUNK, total - sent));
      sent += chunk.length;
      hash?.update(chunk);
      this.push(chunk);
    },
  });
}

/** Samples the proxy's RSS every 50 ms until stopped; reports the highest figure seen. */
function sampleRss(proxy: SpawnedProxy): { stop(): number } {
  let peak = proxy.rssBytes();
  const timer = setInterval(() => {
    peak = Math.max(peak, proxy.rssBytes());
  }, 50);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, proxy.rssBytes());
    },
  };
}

let upstream: TestUpstream;
let routes: RoutesDir;
let proxy: SpawnedProxy;
let idleRss: number;

beforeAll(async () => {
  // Uploads are counted (and hashed when asked) as they arrive; downloads are generated on demand.
  upstream = await startUpstream(
    (req, res) => {
      if (req.method === 'POST') {
        const hash = req.headers['x-want-sha256'] === 'yes' ? createHash('sha256') : undefined;
        let bytes = 0;
        req.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          hash?.update(chunk);
        });
        req.on('end', () => {
          const body = JSON.stringify({ bytes, sha256: hash?.digest('hex') });
          res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
          res.end(body);
        });
        return;
      }
      const bytes = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('bytes'));
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes });
      generatedBody(bytes).pipe(res);
    },
    { bufferBodies: false },
  );
  routes = makeRoutesDir(
    routeYaml('bulk', `
destination: bulk
addressing:
  header: true
backend:
  url: ${upstream.url}/fhir
allow:
  maxRequestBodyBytes: 2147483648`),
  );
  proxy = await spawnProxy({ routesFile: routes.file, args: ['--no-access-log'] });
  // Warm up both directions so JIT and pools are in place, then take the idle figure.
  await upload(8 * MiB, false);
  await download(8 * MiB, false);
  await new Promise((resolve) => setTimeout(resolve, 200));
  idleRss = proxy.rssBytes();
});

afterAll(async () => {
  await proxy.kill();
  await upstream.close();
  routes.remove();
});

/** POSTs a generated body of `total` bytes, chunked (no Content-Length), through the proxy. */
function upload(total: number, withHash: boolean): Promise<{ status: number; bytes: number; sha256?: string; sentSha256?: string }> {
  const url = new URL(proxy.url);
  const sentHash = withHash ? createHash('sha256') : undefined;
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path: '/Binary',
        headers: { 'X-Destination': 'bulk', 'Content-Type': 'application/octet-stream', ...(withHash ? { 'X-Want-Sha256': 'yes' } : {}) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          try {
            const answer = JSON.parse(text) as { bytes: number; sha256?: string };
            resolve({ status: res.statusCode ?? 0, ...answer, ...(sentHash ? { sentSha256: sentHash.digest('hex') } : {}) });
          } catch (err) {
            reject(new Error(`status ${res.statusCode}: ${text.slice(0, 300)}`, { cause: err }));
          }
        });
      },
    );
    req.on('error', reject);
    generatedBody(total, sentHash).pipe(req);
  });
}

/** GETs `total` generated bytes through the proxy, counting (and optionally hashing) them as they come. */
function download(total: number, withHash: boolean): Promise<{ status: number; bytes: number; contentLength: string | undefined; sha256?: string }> {
  const url = new URL(proxy.url);
  const hash = withHash ? createHash('sha256') : undefined;
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: `/Binary/big?bytes=${total}`, headers: { 'X-Destination': 'bulk' } },
      (res) => {
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          hash?.update(chunk);
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, bytes, contentLength: res.headers['content-length'], ...(hash ? { sha256: hash.digest('hex') } : {}) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function expectedSha256(total: number): string {
  const hash = createHash('sha256');
  for (let sent = 0, index = 0; sent < total; index++) {
    const chunk = chunkAt(index, Math.min(CHUNK, total - sent));
    hash.update(chunk);
    sent += chunk.length;
  }
  return hash.digest('hex');
}

const mib = (bytes: number): string => (bytes / MiB).toFixed(1);

describe('large bodies', () => {
  it('passes a 64 MiB chunked upload and a 64 MiB download byte for byte (sha256)', async () => {
    const up = await upload(HASHED_BYTES, true);
    expect(up.status).toBe(200);
    expect(up.bytes).toBe(HASHED_BYTES);
    expect(up.sha256).toBe(up.sentSha256);

    const down = await download(HASHED_BYTES, true);
    expect(down.status).toBe(200);
    expect(down.bytes).toBe(HASHED_BYTES);
    expect(down.contentLength).toBe(String(HASHED_BYTES));
    expect(down.sha256).toBe(expectedSha256(HASHED_BYTES));
  });

  it('uploads 1 GiB (chunked) with the proxy RSS growing less than 128 MiB', async () => {
    const rss = sampleRss(proxy);
    const started = performance.now();
    const up = await upload(GiB, false);
    const seconds = (performance.now() - started) / 1000;
    const growth = rss.stop() - idleRss;
    console.log(`1 GiB upload: ${seconds.toFixed(1)} s (${mib(GiB / seconds)} MiB/s); proxy RSS idle ${mib(idleRss)} MiB, peak growth ${mib(growth)} MiB`);
    expect(up).toMatchObject({ status: 200, bytes: GiB });
    expect(growth).toBeLessThan(RSS_GROWTH_LIMIT);
  }, 60_000);

  it('downloads 1 GiB with the proxy RSS growing less than 128 MiB', async () => {
    const rss = sampleRss(proxy);
    const started = performance.now();
    const down = await download(GiB, false);
    const seconds = (performance.now() - started) / 1000;
    const growth = rss.stop() - idleRss;
    console.log(`1 GiB download: ${seconds.toFixed(1)} s (${mib(GiB / seconds)} MiB/s); proxy RSS idle ${mib(idleRss)} MiB, peak growth ${mib(growth)} MiB`);
    expect(down).toMatchObject({ status: 200, bytes: GiB, contentLength: String(GiB) });
    expect(growth).toBeLessThan(RSS_GROWTH_LIMIT);
  }, 60_000);
});
