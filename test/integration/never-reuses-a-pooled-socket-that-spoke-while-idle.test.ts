// A pooled upstream socket must stay silent between exchanges: bytes arriving on it while idle (a
// late second answer, a desynchronised destination) would be read by the next request as its own
// response. The proxy closes such a socket at once and opens a new one for the next request; a
// socket that stayed silent is reused. Counted at the destination, by connection.
//
// The pool's connection does it (engine/upstream-pool.ts): a message that begins while no answer is
// due marks the connection stray, and it is destroyed instead of reused.

import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeYaml, startProxyFixture, type ProxyFixture } from '../support/proxy-fixture.ts';

const GENUINE = '{"resourceType":"Patient","id":"genuine"}';

interface Connection {
  socket: net.Socket;
  requests: string[];
  closed: boolean;
}

interface Destination {
  url: string;
  connections: Connection[];
  server: net.Server;
}

/** Answers every request with keep-alive; the test decides when a connection speaks out of turn. */
async function startDestination(): Promise<Destination> {
  const connections: Connection[] = [];
  const server = net.createServer((socket) => {
    const connection: Connection = { socket, requests: [], closed: false };
    connections.push(connection);
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let end: number;
      while ((end = buffered.indexOf('\r\n\r\n')) >= 0) {
        connection.requests.push(buffered.slice(0, buffered.indexOf('\r\n')));
        buffered = buffered.slice(end + 4);
        socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nContent-Length: ${GENUINE.length}\r\n\r\n${GENUINE}`);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => (connection.closed = true));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, connections, server };
}

// One destination each: a pool is per origin, and each test counts its own connections.
let quiet: Destination;
let chatty: Destination;
let proxy: ProxyFixture;

beforeAll(async () => {
  quiet = await startDestination();
  chatty = await startDestination();
  proxy = await startProxyFixture(
    routeYaml('quiet', `destination: quiet\naddressing: { pathSegment: true }\nbackend: { url: ${quiet.url}/fhir }`) +
      routeYaml('chatty', `destination: chatty\naddressing: { pathSegment: true }\nbackend: { url: ${chatty.url}/fhir }`),
  );
});

afterAll(async () => {
  await proxy.stop();
  for (const destination of [quiet, chatty]) {
    for (const c of destination.connections) c.socket.destroy();
    await new Promise((resolve) => destination.server.close(resolve));
  }
});

async function read(path: string): Promise<string> {
  const res = await fetch(`${proxy.url}${path}`);
  expect(res.status).toBe(200);
  return res.text();
}

describe('pooled upstream sockets', () => {
  it('reuses a socket that stayed silent while idle', async () => {
    expect(await read('/quiet/Patient/1')).toBe(GENUINE);
    expect(await read('/quiet/Patient/2')).toBe(GENUINE);
    expect(quiet.connections.map((c) => c.requests)).toEqual([['GET /fhir/Patient/1 HTTP/1.1', 'GET /fhir/Patient/2 HTTP/1.1']]);
  });

  it('closes a socket on which bytes arrive while idle, and sends the next request on a new one', async () => {
    expect(await read('/chatty/Patient/1')).toBe(GENUINE);
    const [first] = chatty.connections;
    if (first === undefined) throw new Error('the destination saw no chatty connection');
    // The exchange is over and the socket is back in the pool: now it speaks, unasked. A whole,
    // well-formed answer (bodiless, so nothing about it fails to parse): only the rule that no
    // message may begin while none is due catches it.
    first.socket.write('HTTP/1.1 204 No Content\r\nX-Unsolicited: yes\r\n\r\n');
    // The proxy closes it at once, long before its pool's own idle timeout (4 s).
    await expect.poll(() => first.closed, { timeout: 2_000, interval: 20 }).toBe(true);
    expect(await read('/chatty/Patient/2')).toBe(GENUINE);
    expect(chatty.connections.map((c) => c.requests)).toEqual([['GET /fhir/Patient/1 HTTP/1.1'], ['GET /fhir/Patient/2 HTTP/1.1']]);
  });
});
