// The cluster-test harness itself: the shared control plane serves the pinned release over TLS to the
// admin token, stores and watches objects, signs service-account tokens, and a control plane of its own
// keeps its objects in etcd across a kube-apiserver restart.

import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { pinnedVersions } from './binaries.ts';
import { adminClient, clusterContext, uniqueName } from './cluster-context.ts';
import { startControlPlane, type ControlPlane } from './control-plane.ts';
import { KubeHttp, type KubeObject, type WatchEvent } from './kube-http.ts';
import { createServiceAccountToken } from './service-account-tokens.ts';

const expectedVersion = process.env['KUBE_VERSION'] || pinnedVersions().kubeVersion;

async function createNamespace(kube: KubeHttp, name: string): Promise<void> {
  await kube.json('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
}

function configMap(name: string, data: Record<string, string>): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data };
}

/** The first watch event that matches, or a failure after timeoutMs. */
async function nextEvent(events: AsyncGenerator<WatchEvent>, match: (event: WatchEvent) => boolean, timeoutMs = 10_000): Promise<WatchEvent> {
  const deadline = setTimeout(() => void events.return(undefined), timeoutMs);
  try {
    for await (const event of events) if (match(event)) return event;
  } finally {
    clearTimeout(deadline);
  }
  throw new Error(`no matching watch event within ${timeoutMs} ms`);
}

describe('shared control plane from global setup', () => {
  const cluster = clusterContext();
  let kube: KubeHttp;

  beforeAll(() => {
    kube = adminClient();
  });
  afterAll(async () => {
    await kube.close();
  });

  it('reports the pinned Kubernetes release on /version', async () => {
    const version = await kube.json<{ gitVersion: string; major: string; minor: string }>('GET', '/version');
    expect(version.gitVersion).toBe(expectedVersion);
    expect(`v${version.major}.${version.minor}.`).toBe(expectedVersion.replace(/\d+$/, ''));
    expect(cluster.version).toBe(expectedVersion);
  });

  it('answers /readyz with ok', async () => {
    const readyz = await kube.request('GET', '/readyz');
    expect(readyz).toEqual({ status: 200, body: 'ok' });
  });

  it('rejects a bearer token it does not know', async () => {
    const stranger = new KubeHttp({ ...cluster, token: 'not-a-known-token' });
    try {
      expect((await stranger.request('GET', '/api/v1/namespaces')).status).toBe(401);
    } finally {
      await stranger.close();
    }
  });

  it('writes a kubeconfig with the server, CA and admin token', () => {
    const kubeconfig = parseYaml(fs.readFileSync(cluster.kubeconfigPath, 'utf8'));
    const cluster0 = kubeconfig.clusters[0].cluster;
    expect(cluster0.server).toBe(cluster.url);
    expect(Buffer.from(cluster0['certificate-authority-data'], 'base64').toString()).toBe(cluster.caPem);
    expect(kubeconfig.users[0].user.token).toBe(cluster.token);
  });

  it('stores a namespace and a config map', async () => {
    const namespace = uniqueName('harness');
    await createNamespace(kube, namespace);
    await kube.json('POST', `/api/v1/namespaces/${namespace}/configmaps`, configMap('routes', { mode: 'test' }));
    const stored = await kube.json<KubeObject & { data: Record<string, string> }>('GET', `/api/v1/namespaces/${namespace}/configmaps/routes`);
    expect(stored.data).toEqual({ mode: 'test' });
    expect(stored.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('streams an ADDED event for a config map created after the watch started', async () => {
    const namespace = uniqueName('watch');
    await createNamespace(kube, namespace);
    const collection = `/api/v1/namespaces/${namespace}/configmaps`;
    const list = await kube.json<{ metadata: { resourceVersion: string } }>('GET', collection);
    const abort = new AbortController();
    const events = kube.watch(`${collection}?resourceVersion=${list.metadata.resourceVersion}`, abort.signal);
    try {
      const first = nextEvent(events, (event) => event.object.metadata?.name === 'watched');
      await kube.json('POST', collection, configMap('watched', { n: '1' }));
      const event = await first;
      expect(event.type).toBe('ADDED');
      expect(event.object.data).toEqual({ n: '1' });
    } finally {
      abort.abort();
    }
  });

  it('signs service-account tokens for the fhirmesh audience that TokenReview accepts', async () => {
    const namespace = uniqueName('tokens');
    await createNamespace(kube, namespace);
    const token = await createServiceAccountToken(kube, 'fhirmesh-proxy', { namespace, audiences: ['fhirmesh'] });
    const review = await kube.json<{ status: { authenticated?: boolean; audiences?: string[]; user?: { username?: string } } }>(
      'POST',
      '/apis/authentication.k8s.io/v1/tokenreviews',
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: ['fhirmesh'] } },
    );
    expect(review.status.authenticated).toBe(true);
    expect(review.status.audiences).toEqual(['fhirmesh']);
    expect(review.status.user?.username).toBe(`system:serviceaccount:${namespace}:fhirmesh-proxy`);
  });
});

// Its own control plane: restarting the shared one would pull it from under other test files.
describe('restartApiserver', () => {
  let plane: ControlPlane;
  let kube: KubeHttp;

  beforeAll(async () => {
    plane = await startControlPlane();
    kube = new KubeHttp(plane.connection);
  });
  afterAll(async () => {
    await kube?.close();
    await plane?.stop();
  });

  it('keeps objects in etcd and serves on the same URL and certificate after a restart', async () => {
    await createNamespace(kube, 'survivor');
    const created = await kube.json('POST', '/api/v1/namespaces/survivor/configmaps', configMap('kept', { state: 'before' }));

    await plane.restartApiserver({ signal: 'SIGKILL' });

    // A fresh client: the old connection pool points at the dead process.
    const after = new KubeHttp(plane.connection);
    try {
      const kept = await after.json('GET', '/api/v1/namespaces/survivor/configmaps/kept');
      expect(kept.metadata?.uid).toBe(created.metadata?.uid);
      expect(kept.data).toEqual({ state: 'before' });

      const list = await after.json<{ metadata: { resourceVersion: string } }>('GET', '/api/v1/namespaces/survivor/configmaps');
      const abort = new AbortController();
      const events = after.watch(`/api/v1/namespaces/survivor/configmaps?resourceVersion=${list.metadata.resourceVersion}`, abort.signal);
      try {
        const added = nextEvent(events, (event) => event.object.metadata?.name === 'after-restart');
        await after.json('POST', '/api/v1/namespaces/survivor/configmaps', configMap('after-restart', { state: 'after' }));
        expect((await added).type).toBe('ADDED');
      } finally {
        abort.abort();
      }
    } finally {
      await after.close();
    }
  });
});
