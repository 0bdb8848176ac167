// Faults on both sides of a real proxy process, on loopback: the destination refuses, resets
// mid-request and mid-response, hangs before the first byte, trickles, answers malformed or with an
// unsolicited 101, closes a keep-alive socket as the proxy reuses it; the originator aborts mid-upload
// and mid-download. Each gets its documented result within the route's timeout plus a margin, and
// the proxy's open descriptors and sockets (counted in /proc/<pid>/fd) return to their baseline.

import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeYaml } from '../support/proxy-fixture.ts';
import { hasFinalResponses, header, parseResponses, rawExchange } from '../support/raw-http.ts';
import { freePort } from '../support/spawn-controller.ts';
import { makeRoutesDir, spawnProxy, type RoutesDir, type SpawnedProxy } from '../support/spawn-proxy.ts';

/** Load on a shared 2-core machine delays timers and loopback; what is asserted is the order of magnitude. */
const MARGIN_MS = 1_500;
/** Long enough that answering "promptly" and waiting for the timer cannot be confused. */
const PROMPT_FIRST_BYTE_MS = 4_000;
const HANG_FIRST_BYTE_MS = 800;
const IDLE_MS = 3_000;

interface Descriptors {
  fds: number;
  sockets: number;
}

/** Entries of /proc/<pid>/fd, and how many of them are sockets. */
function descriptorsOf(pid: number): Descriptors {
  const entries = fs.readdirSync(`/proc/${pid}/fd`);
  let sockets = 0;
  for (const entry of entries) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${entry}`).startsWith('socket:')) sockets++;
    } catch {
      // Closed between the listing and the readlink.
    }
  }
  return { fds: entries.length, sockets };
}

// ---- a destination on raw sockets that misbehaves as the first path segment says ----

type Behaviour = (socket: net.Socket, head: string, rest: Buffer, requestOnConnection: number) => void;

const OK_CLOSE = 'HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}';

interface FaultDestination {
  port: number;
  connections: number;
  heads: string[];
  close(): Promise<void>;
}

async function startFaultDestination(behaviours: Record<string, Behaviour>): Promise<FaultDestination> {
  const sockets = new Set<net.Socket>();
  const state = { connections: 0, heads: [] as string[] };
  const server = net.createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = Buffer.alloc(0);
    let requests = 0;
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buffered.subarray(0, end).toString('latin1');
      const rest = buffered.subarray(end + 4);
      buffered = Buffer.alloc(0);
      state.heads.push(head);
      requests++;
      const name = /^[A-Z]+ \/([^/? ]+)/.exec(head)?.[1] ?? '';
      const behaviour = behaviours[name];
      if (behaviour === undefined) socket.end(OK_CLOSE);
      else behaviour(socket, head, rest, requests);
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return state.connections;
    },
    heads: state.heads,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Writes `text` one byte every `everyMs`, then runs `then`; stops if the socket goes. */
function trickle(socket: net.Socket, text: string, everyMs: number, then: () => void = () => undefined): void {
  let at = 0;
  const timer = setInterval(() => {
    if (socket.destroyed) {
      clearInterval(timer);
      return;
    }
    socket.write(text.slice(at, at + 1));
    at++;
    if (at >= text.length) {
      clearInterval(timer);
      then();
    }
  }, everyMs);
}

const TRICKLED_BODY = '{"resourceType":"Patient","id":"slow"}';
/** What the originator-side faults left at the destination. */
const seenByStreamingDestination = { uploadBytes: 0, uploadCut: 0, uploadComplete: 0, downloadCut: 0 };

const faults: Record<string, Behaviour> = {
  // Reads part of the upload, then resets.
  'reset-request': (socket, _head, rest) => {
    let received = rest.length;
    const check = (): void => {
      if (received >= 16 * 1024) socket.resetAndDestroy();
    };
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      check();
    });
    check();
  },
  // The status line and part of the body, then a reset.
  'reset-response': (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nContent-Length: 1000\r\n\r\n{"resourceType":"Bundle",');
    setTimeout(() => socket.resetAndDestroy(), 50);
  },
  hang: () => undefined,
  // The head, one byte at a time, slower in total than the first-byte timeout.
  'trickle-head': (socket) => trickle(socket, 'HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nContent-Length: 2\r\n\r\n{}', 100),
  // The body, one byte at a time: every gap far inside the idle timeout, the whole longer than it.
  'trickle-body': (socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nContent-Length: ${TRICKLED_BODY.length}\r\nConnection: close\r\n\r\n`);
    trickle(socket, TRICKLED_BODY, Math.ceil((IDLE_MS * 1.3) / TRICKLED_BODY.length), () => socket.end());
  },
  malformed: (socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}'),
  'upgrade-101': (socket) => socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n\x00\x00\x00\x04\x00'),
  // Keep-alive for the first request on a connection; any later one on it closes it unanswered.
  reuse: (socket, _head, _rest, requestOnConnection) => {
    if (requestOnConnection === 1) socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nContent-Length: 2\r\nKeep-Alive: timeout=60\r\n\r\n{}');
    else socket.destroy();
  },
};

let destination: FaultDestination;
let streaming: http.Server;
let routes: RoutesDir;
let proxy: SpawnedProxy;
let proxyPort: number;
let baseline: Descriptors;

function route(name: string, backendUrl: string, timeouts: string): string {
  return routeYaml(name, `destination: ${name}\naddressing: { pathSegment: true }\nbackend: { url: ${backendUrl} }\ntimeouts: { ${timeouts} }`);
}

beforeAll(async () => {
  destination = await startFaultDestination(faults);
  streaming = http.createServer((req, res) => {
    if (req.url?.startsWith('/upload') === true) {
      req.on('close', () => {
        if (req.complete) seenByStreamingDestination.uploadComplete++;
        else seenByStreamingDestination.uploadCut++;
      });
      req.on('data', (chunk: Buffer) => (seenByStreamingDestination.uploadBytes += chunk.length));
      req.on('end', () => res.end('{}'));
      return;
    }
    // An endless download, 16 KiB at a time as fast as the proxy takes it.
    res.writeHead(200, { 'Content-Type': 'application/fhir+ndjson' });
    const chunk = Buffer.alloc(16 * 1024, 'x');
    const pump = (): void => {
      while (!res.destroyed && res.write(chunk));
    };
    res.on('drain', pump);
    res.on('close', () => {
      if (!res.writableFinished) seenByStreamingDestination.downloadCut++;
    });
    pump();
  });
  await new Promise<void>((resolve) => streaming.listen(0, '127.0.0.1', resolve));
  const streamingUrl = `http://127.0.0.1:${(streaming.address() as net.AddressInfo).port}`;
  const faultUrl = `http://127.0.0.1:${destination.port}`;
  const closedPort = await freePort();
  const prompt = `connect: 1s, firstByte: ${PROMPT_FIRST_BYTE_MS}ms, idle: ${IDLE_MS}ms`;
  routes = makeRoutesDir(
    [
      route('refused', `http://127.0.0.1:${closedPort}/fhir`, prompt),
      ...['reset-request', 'reset-response', 'malformed', 'upgrade-101', 'reuse', 'ok'].map((name) => route(name, `${faultUrl}/${name}`, prompt)),
      route('hang', `${faultUrl}/hang`, `connect: 1s, firstByte: ${HANG_FIRST_BYTE_MS}ms, idle: ${IDLE_MS}ms`),
      route('trickle-head', `${faultUrl}/trickle-head`, `connect: 1s, firstByte: ${HANG_FIRST_BYTE_MS}ms, idle: ${IDLE_MS}ms`),
      route('trickle-body', `${faultUrl}/trickle-body`, `connect: 1s, firstByte: ${HANG_FIRST_BYTE_MS}ms, idle: ${IDLE_MS}ms`),
      route('upload', `${streamingUrl}/upload`, prompt),
      route('download', `${streamingUrl}/download`, prompt),
    ].join(''),
  );
  proxy = await spawnProxy({ routesFile: routes.file, args: ['--no-access-log'] });
  proxyPort = Number(new URL(proxy.url).port);
}, 60_000);

afterAll(async () => {
  await proxy?.kill();
  await destination?.close();
  streaming?.closeAllConnections();
  await new Promise((r) => streaming?.close(r));
  routes?.remove();
});

interface Answer {
  status: number;
  error: string | undefined;
  ms: number;
  complete: boolean;
  body: string;
  closed: boolean;
}

/** One request on a new connection; the status (0 when cut before any), its error code and time taken. */
async function exchange(request: string, steps: { write: string }[] = []): Promise<Answer> {
  const started = performance.now();
  const result = await rawExchange(proxyPort, [{ write: request }, ...steps], { until: hasFinalResponses(1), timeoutMs: 15_000 });
  const ms = performance.now() - started;
  result.socket.destroy();
  const responses = result.data.length === 0 ? [] : parseResponses(result.data).filter((r) => r.status >= 200);
  const last = responses.at(-1);
  return {
    status: last?.status ?? 0,
    error: last === undefined ? undefined : header(last, 'fhirmesh-error'),
    ms,
    complete: last?.complete ?? false,
    body: last?.body.toString('latin1') ?? '',
    closed: result.closed,
  };
}

async function expectBaseline(): Promise<void> {
  // Pooled sockets close after 4 s idle; nothing else may stay open.
  await expect.poll(() => descriptorsOf(proxy.pid), { timeout: 12_000, interval: 100 }).toEqual(baseline);
}

describe('the proxy at rest', () => {
  it('has a stable count of descriptors and sockets after an ordinary exchange (the baseline)', async () => {
    const warm = await exchange('GET /ok/Patient HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
    expect(warm.status).toBe(200);
    // Stable across the pool's idle timeout (4 s): an idle pooled socket of the warm-up exchange,
    // which would close later and make every later count look smaller, is not part of the baseline.
    let previous = descriptorsOf(proxy.pid);
    let stableSince = performance.now();
    await expect
      .poll(
        () => {
          const now = descriptorsOf(proxy.pid);
          if (now.fds !== previous.fds || now.sockets !== previous.sockets) stableSince = performance.now();
          previous = now;
          return performance.now() - stableSince >= 4_500;
        },
        { timeout: 15_000, interval: 250 },
      )
      .toBe(true);
    baseline = previous;
    // The listener, the admin listener, stdio pipes: a handful of sockets, never zero.
    expect(baseline.sockets).toBeGreaterThanOrEqual(2);
  });
});

describe('destination faults', () => {
  it('refused: 502 FHIRMESH_UPSTREAM_REFUSED at once', async () => {
    const answer = await exchange('GET /refused/Patient HTTP/1.1\r\nHost: gw\r\n\r\n');
    expect([answer.status, answer.error]).toEqual([502, 'FHIRMESH_UPSTREAM_REFUSED']);
    expect(answer.ms).toBeLessThan(1_000 + MARGIN_MS);
    await expectBaseline();
  });

  it('reset mid-request: 502 FHIRMESH_UPSTREAM_RESET before the upload is done', async () => {
    const answer = await exchange('POST /reset-request/Patient HTTP/1.1\r\nHost: gw\r\nContent-Type: application/fhir+json\r\nContent-Length: 1048576\r\n\r\n', [
      { write: 'x'.repeat(64 * 1024) },
    ]);
    expect([answer.status, answer.error]).toEqual([502, 'FHIRMESH_UPSTREAM_RESET']);
    expect(answer.ms).toBeLessThan(PROMPT_FIRST_BYTE_MS);
    await expectBaseline();
  });

  it('reset mid-response: the status relayed, then the originator\'s connection cut short, at once', async () => {
    const answer = await exchange('GET /reset-response/Patient HTTP/1.1\r\nHost: gw\r\n\r\n');
    expect([answer.status, answer.complete, answer.closed]).toEqual([200, false, true]);
    expect(answer.body).toBe('{"resourceType":"Bundle",');
    expect(answer.ms).toBeLessThan(IDLE_MS);
    await expectBaseline();
  });

  it('hangs before the first byte: 504 FHIRMESH_UPSTREAM_TIMEOUT at the first-byte timeout', async () => {
    const answer = await exchange('GET /hang/Patient HTTP/1.1\r\nHost: gw\r\n\r\n');
    expect([answer.status, answer.error]).toEqual([504, 'FHIRMESH_UPSTREAM_TIMEOUT']);
    expect(answer.ms).toBeGreaterThanOrEqual(HANG_FIRST_BYTE_MS - 20);
    expect(answer.ms).toBeLessThan(HANG_FIRST_BYTE_MS + MARGIN_MS);
    await expectBaseline();
  });

  it('trickles its head: 504 at the first-byte timeout, which covers the whole response head', async () => {
    const answer = await exchange('GET /trickle-head/Patient HTTP/1.1\r\nHost: gw\r\n\r\n');
    expect([answer.status, answer.error]).toEqual([504, 'FHIRMESH_UPSTREAM_TIMEOUT']);
    expect(answer.ms).toBeGreaterThanOrEqual(HANG_FIRST_BYTE_MS - 20);
    expect(answer.ms).toBeLessThan(HANG_FIRST_BYTE_MS + MARGIN_MS);
    await expectBaseline();
  });

  it('trickles its body: relayed whole, since only silence counts (the whole takes longer than the idle timeout)', async () => {
    const answer = await exchange('GET /trickle-body/Patient HTTP/1.1\r\nHost: gw\r\n\r\n');
    expect([answer.status, answer.complete, answer.body]).toEqual([200, true, TRICKLED_BODY]);
    expect(answer.ms).toBeGreaterThan(IDLE_MS);
    await expectBaseline();
  });

  it('malformed response: 502 FHIRMESH_UPSTREAM_BAD_RESPONSE at once', async () => {
    const answer = await exchange('GET /malformed/Patient HTTP/1.1\r\nHost: gw\r\n\r\n');
    expect([answer.status, answer.error]).toEqual([502, 'FHIRMESH_UPSTREAM_BAD_RESPONSE']);
    expect(answer.ms).toBeLessThan(PROMPT_FIRST_BYTE_MS);
    await expectBaseline();
  });

  it('unsolicited 101: 502 FHIRMESH_UPSTREAM_BAD_RESPONSE at once, not 504 at the first-byte timeout', async () => {
    const answer = await exchange('GET /upgrade-101/Patient HTTP/1.1\r\nHost: gw\r\n\r\n');
    expect([answer.status, answer.error]).toEqual([502, 'FHIRMESH_UPSTREAM_BAD_RESPONSE']);
    expect(answer.ms).toBeLessThan(PROMPT_FIRST_BYTE_MS);
    await expectBaseline();
  });

  it('closes the keep-alive socket the proxy reuses: a GET is sent again on a fresh one, a POST with a body is 502', async () => {
    const connectionsBefore = destination.connections;
    const first = await exchange('GET /reuse/Patient/1 HTTP/1.1\r\nHost: gw\r\n\r\n');
    expect(first.status).toBe(200);
    // Reuses the pooled socket, which the destination closes unanswered: replayed on a new one.
    const replayed = await exchange('GET /reuse/Patient/2 HTTP/1.1\r\nHost: gw\r\n\r\n');
    expect(replayed.status).toBe(200);
    expect(destination.connections - connectionsBefore).toBe(2);
    expect(destination.heads.filter((h) => h.startsWith('GET /reuse/Patient/2 ')).length).toBe(2);
    // A body is streamed, never kept: it cannot be sent twice, so the originator is told.
    const post = await exchange('POST /reuse/Patient HTTP/1.1\r\nHost: gw\r\nContent-Type: application/fhir+json\r\nContent-Length: 2\r\n\r\n{}');
    expect([post.status, post.error]).toEqual([502, 'FHIRMESH_UPSTREAM_RESET']);
    expect(post.ms).toBeLessThan(PROMPT_FIRST_BYTE_MS);
    await expectBaseline();
  });
});

describe('originator faults', () => {
  it('aborts mid-upload: the destination\'s request is cut, never completed, at once', async () => {
    const before = { ...seenByStreamingDestination };
    const socket = net.connect(proxyPort, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('POST /upload/Binary HTTP/1.1\r\nHost: gw\r\nContent-Type: application/octet-stream\r\nContent-Length: 10485760\r\n\r\n');
    socket.write(Buffer.alloc(256 * 1024, 'u'));
    // Part of the body reached the destination: the exchange is under way.
    await expect.poll(() => seenByStreamingDestination.uploadBytes > before.uploadBytes, { timeout: 5_000 }).toBe(true);
    const started = performance.now();
    socket.destroy();
    await expect.poll(() => seenByStreamingDestination.uploadCut, { timeout: IDLE_MS }).toBe(before.uploadCut + 1);
    expect(performance.now() - started).toBeLessThan(IDLE_MS);
    expect(seenByStreamingDestination.uploadComplete).toBe(before.uploadComplete);
    await expectBaseline();
  });

  it('aborts mid-download: the destination\'s response is cut at once, nothing keeps streaming', async () => {
    const before = seenByStreamingDestination.downloadCut;
    const socket = net.connect(proxyPort, '127.0.0.1');
    let received = 0;
    const enough = new Promise<void>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > 256 * 1024) resolve();
      });
    });
    socket.on('error', () => undefined);
    socket.write('GET /download/Binary/big HTTP/1.1\r\nHost: gw\r\n\r\n');
    await enough;
    const started = performance.now();
    socket.destroy();
    await expect.poll(() => seenByStreamingDestination.downloadCut, { timeout: IDLE_MS }).toBe(before + 1);
    expect(performance.now() - started).toBeLessThan(IDLE_MS);
    await expectBaseline();
  });
});

describe('the proxy afterwards', () => {
  it('still serves, and is back at its baseline of descriptors and sockets', async () => {
    const answer = await exchange('GET /ok/Patient HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
    expect(answer.status).toBe(200);
    await expectBaseline();
    // Figures for docs/reliability.md.
    console.log(`proxy descriptors at rest: ${baseline.fds} (sockets ${baseline.sockets})`);
  });
});
