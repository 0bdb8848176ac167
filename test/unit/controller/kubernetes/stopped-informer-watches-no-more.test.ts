// Pins that a watch whose informer run is over never reaches the apiserver: client-node's ListWatch
// still calls watch() after stop() when its reconnect backoff ends, and that must go nowhere.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { ObservedWatch } from '../../../../controller/src/kubernetes/internal/observed-watch.ts';

const servers: http.Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/** An "apiserver" that counts watch requests and keeps each one open. */
async function apiserver(): Promise<{ config: KubeConfig; watches: () => number }> {
  let watches = 0;
  const server = http.createServer((req, res) => {
    if (req.url?.includes('watch=true') === true) watches++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.flushHeaders();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'test', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'test', token: 'test' }],
    contexts: [{ name: 'test', cluster: 'test', user: 'test' }],
    currentContext: 'test',
  });
  return { config, watches: () => watches };
}

function observedWatch(config: KubeConfig, live: { value: boolean }): ObservedWatch {
  return new ObservedWatch(config, { line: () => undefined, internalFailure: () => undefined, live: () => live.value }, { inactivityTimeoutMs: 60_000, serverTimeoutSeconds: () => 300 });
}

describe('ObservedWatch', () => {
  it('watches while its run is live', async () => {
    const { config, watches } = await apiserver();
    // watch() resolves once the apiserver has answered the request: it has been counted by then.
    const request = await observedWatch(config, { value: true }).watch('/api/v1/secrets', { resourceVersion: '1' }, () => undefined, () => undefined);
    expect(watches()).toBe(1);
    expect(request.signal.aborted).toBe(false);
    request.abort();
  });

  it('sends nothing once its run is over, and hands back a request already aborted', async () => {
    const { config, watches } = await apiserver();
    const live = { value: true };
    const watch = observedWatch(config, live);
    const first = await watch.watch('/api/v1/secrets', { resourceVersion: '1' }, () => undefined, () => undefined);
    expect(watches()).toBe(1);
    first.abort();

    // The informer stopped; ListWatch's reconnect comes after its backoff anyway.
    live.value = false;
    let done = 0;
    const late = await watch.watch('/api/v1/secrets', { resourceVersion: '2' }, () => undefined, () => done++);
    expect(late.signal.aborted).toBe(true);
    expect(watches()).toBe(1);
    expect(done).toBe(0);
  });
});
