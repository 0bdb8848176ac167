// Wires Kubernetes mode: informers → route source; status writer on a work queue, leader-gated;
// leader election; proxy reports between replicas. One lifecycle, driven by the source's start/stop.

import os from 'node:os';
import { KubeConfig } from '@kubernetes/client-node';
import type { FhirRoute, FhirRouteStatus } from '../../../api/index.ts';
import { tokenReviewAuthenticator } from '../auth/index.ts';
import type { Translation } from '../compile/index.ts';
import { ControllerError } from '../errors.ts';
import type { AttachedController, KubernetesMode, KubernetesModeOptions } from '../kubernetes-seam.ts';
import type { RouteSource } from '../sources/index.ts';
import { computeRouteStatus, type ProxyGroup } from '../status/index.ts';
import { TokenBucket } from './internal/backoff.ts';
import { splitKey, type KubeObject } from './internal/objects.ts';
import { KubeClient } from './kube-client.ts';
import { KubernetesMetrics } from './kubernetes-metrics.ts';
import { KubernetesRouteSource, projectRoute, projectSecret, projectService, type SecretData, type ServiceEntry } from './kubernetes-route-source.ts';
import { ALWAYS_LEADER, kubeLeaseStore, LeaderElector, type Leadership } from './leader-election.ts';
import { groupViews, mergeViews, REPORT_LABEL, viewsOfRecords } from './proxy-reports.ts';
import { ProxyReportAggregator, ProxyReportPublisher, projectReport, reportTimingFor, type ReportEntry, type ReportTiming } from './replica-reports.ts';
import { ResilientInformer, type InformerTiming } from './resilient-informer.ts';
import { kubeStatusPatcher, RouteStatusWriter, type StatusPatcher } from './route-status-writer.ts';
import { kubeTokenReviewer } from './token-reviewer.ts';
import { WorkQueue, type WorkQueueOptions } from './work-queue.ts';

/** Knobs for tests and tuning that are not flags. */
export interface KubernetesTuning {
  /** Use this configuration instead of loading --kubeconfig or the in-cluster one. */
  kubeConfig?: KubeConfig;
  informer?: Partial<InformerTiming>;
  reports?: Partial<ReportTiming>;
  statusQueue?: WorkQueueOptions;
  /** PATCHes of status per second overall, and saved up. Default 20 and 50. */
  statusWritesPerSecond?: number;
  statusWriteBurst?: number;
  /** Replaces the apiserver for status writes (tests that count or fail them). */
  statusPatcher?: StatusPatcher;
}

export type KubernetesModeSetup = KubernetesModeOptions & { tuning?: KubernetesTuning };

/**
 * Secrets the controller never needs, left out of the watch by type: Helm keeps whole releases in
 * Secrets (often hundreds of KiB each) and the rest hold credentials of other kinds. A TLS Secret
 * (kubernetes.io/tls) or an Opaque one with ca.crt still comes through.
 */
export const SECRET_FIELD_SELECTOR = [
  'helm.sh/release.v1',
  'kubernetes.io/service-account-token',
  'kubernetes.io/dockerconfigjson',
  'kubernetes.io/dockercfg',
  'bootstrap.kubernetes.io/token',
]
  .map((type) => `type!=${type}`)
  .join(',');

/** The kubernetes mode's handle beyond the seam: what tests and /debug look at. */
export interface KubernetesModeInternals {
  /** The authenticated client, shared by informers, status writes, leader election and TokenReview. */
  client: KubeClient;
  routes: ResilientInformer<FhirRoute>;
  services: ResilientInformer<ServiceEntry>;
  secrets: ResilientInformer<SecretData>;
  reports: ResilientInformer<ReportEntry> | undefined;
  writer: RouteStatusWriter;
  queue: WorkQueue;
  leadership: Leadership;
  replicaId: string;
  leaseNamespace: string | undefined;
}

export type KubernetesModeHandle = KubernetesMode & { internals: KubernetesModeInternals };

/** The seam's CreateKubernetesMode: builds everything, starts nothing (the source's start() does). */
export function createKubernetesMode(options: KubernetesModeSetup): Promise<KubernetesModeHandle> {
  try {
    return Promise.resolve(buildKubernetesMode(options));
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

function buildKubernetesMode(options: KubernetesModeSetup): KubernetesModeHandle {
  const { logger } = options;
  const tuning = options.tuning ?? {};
  const config = tuning.kubeConfig ?? loadKubeConfig(options.kubeconfig);
  const client = new KubeClient(config);
  const metrics = new KubernetesMetrics(options.metrics.registry);
  const scope = options.namespace;
  const replicaId = options.replicaId ?? os.hostname();

  const informer = <T>(resource: string, path: string, project: (object: KubeObject) => T, selectors: { labelSelector?: string; fieldSelector?: string } = {}): ResilientInformer<T> =>
    new ResilientInformer<T>({ resource, config, client, path, project, logger, metrics, ...selectors, ...(tuning.informer === undefined ? {} : { timing: tuning.informer }) });
  const routes = informer<FhirRoute>('fhirroutes.fhirmesh.io', collection('/apis/fhirmesh.io/v1alpha1', 'fhirroutes', scope), projectRoute);
  const services = informer<ServiceEntry>('services', collection('/api/v1', 'services', scope), projectService);
  const secrets = informer<SecretData>('secrets', collection('/api/v1', 'secrets', scope), projectSecret, { fieldSelector: SECRET_FIELD_SELECTOR });
  const routeSource = new KubernetesRouteSource({ routes, services, secrets, ...(scope === undefined ? {} : { namespace: scope }), logger });

  let stopping = false;
  const election = options.leaderElection;
  const leaseNamespace = election === undefined ? undefined : (election.leaseNamespace ?? contextNamespace(config) ?? 'default');
  const elector =
    election === undefined || leaseNamespace === undefined
      ? undefined
      : new LeaderElector({
          store: kubeLeaseStore(client, leaseNamespace, election.leaseName, Math.max(1_000, election.retryPeriodMs)),
          identity: replicaId,
          timing: election,
          logger,
        });
  const leadership: Leadership = elector ?? ALWAYS_LEADER;

  const queue = new WorkQueue({
    workers: 2,
    onError: (key, err) => {
      if (stopping) return;
      metrics.queueRetried();
      logger.log('warn', 'route status write failed; retrying with backoff', { route: key, error: err instanceof Error ? err.message : String(err) });
    },
    onDepth: (depth) => metrics.queueDepth(depth),
    ...tuning.statusQueue,
  });
  const writer = new RouteStatusWriter({
    patcher: tuning.statusPatcher ?? kubeStatusPatcher(client),
    routes,
    queue,
    leader: leadership,
    logger,
    metrics,
    writeLimiter: new TokenBucket({ ratePerSecond: tuning.statusWritesPerSecond ?? 20, burst: tuning.statusWriteBurst ?? 50 }),
  });
  // Handlers only enqueue: a route edited, re-created, or its status changed by someone else.
  routes.onChange((key) => writer.enqueue(key));
  leadership.onChange((leading) => {
    metrics.leading(leading);
    if (leading) writer.enqueueAll();
  });
  metrics.leading(leadership.isLeader());

  // Cross-replica ACK state: only with leader election, i.e. when there can be several replicas.
  const reportTiming: ReportTiming | undefined = election === undefined ? undefined : { ...reportTimingFor(election.leaseDurationMs), ...tuning.reports };
  const reports =
    reportTiming === undefined || leaseNamespace === undefined
      ? undefined
      : informer<ReportEntry>('configmaps (proxy reports)', `/api/v1/namespaces/${leaseNamespace}/configmaps`, projectReport, { labelSelector: `${REPORT_LABEL}=true` });
  let groups: ProxyGroup[] | undefined;
  let recountTimer: NodeJS.Timeout | undefined;
  /** Something every route's proxy counts depend on changed: recount them all, soon and once. */
  const recountSoon = (): void => {
    groups = undefined;
    if (stopping || recountTimer !== undefined || !leadership.isLeader()) return;
    recountTimer = setTimeout(() => {
      recountTimer = undefined;
      writer.enqueueAll();
    }, 50);
  };
  const aggregator =
    reports === undefined || reportTiming === undefined
      ? undefined
      : new ProxyReportAggregator({
          reports,
          replica: replicaId,
          ttlMs: reportTiming.ttlMs,
          logger,
          onChange: () => {
            metrics.liveReports(aggregator?.liveCount ?? 0);
            recountSoon();
          },
          onExpired: (keys) => {
            if (leadership.isLeader()) for (const key of keys) void deleteReport(client, key, reports.resourceVersionOf(key));
          },
        });

  let attached: AttachedController | undefined;
  let publisher: ProxyReportPublisher | undefined;
  let started = false;
  const startPublisher = (): void => {
    if (!started || attached === undefined || reportTiming === undefined || leaseNamespace === undefined || publisher !== undefined) return;
    const registry = attached.registry;
    publisher = new ProxyReportPublisher({
      client,
      namespace: leaseNamespace,
      replica: replicaId,
      ...(options.replicaPod === undefined ? {} : { ownerPod: options.replicaPod }),
      proxies: () => registry.list(),
      timing: reportTiming,
      logger,
    });
    publisher.start();
  };

  const keyIndexes = new WeakMap<Translation, Map<string, number>>();
  /** The status from the translation in force and every replica's proxies; the published one until attached. */
  const desiredStatus = (controller: AttachedController, key: string, cached: FhirRoute): FhirRouteStatus | undefined => {
    const translation = controller.store.current;
    if (translation === undefined) return writer.published(key);
    let index = keyIndexes.get(translation);
    if (index === undefined) {
      index = new Map();
      // A key given twice: the first is the object (compile marks the copy Conflicted).
      for (const [i, result] of translation.results.entries()) if (!index.has(result.key)) index.set(result.key, i);
      keyIndexes.set(translation, index);
    }
    const i = index.get(key);
    const route = i === undefined ? undefined : translation.routes[i];
    const result = i === undefined ? undefined : translation.results[i];
    if (route === undefined || result === undefined) return writer.published(key);
    groups ??= groupViews(mergeViews([viewsOfRecords(controller.registry.list()), ...(aggregator?.remoteViews() ?? [])]));
    return computeRouteStatus({ route, result, proxies: groups, previous: cached.status, now: new Date() });
  };

  const description = routeSource.description;
  const source: RouteSource = {
    description,
    async start() {
      logger.log('info', 'kubernetes mode starting', {
        server: client.server,
        watching: scope ?? 'all namespaces',
        replica: replicaId,
        leaderElection: elector === undefined ? 'off (this replica writes status)' : `${leaseNamespace}/${election?.leaseName}`,
      });
      await Promise.all([routeSource.start(), reports?.start()]);
      queue.run(async (key) => {
        await writer.reconcile(key);
      });
      aggregator?.start();
      elector?.start();
      started = true;
      startPublisher();
    },
    state: () => routeSource.state(),
    onChange: (listener) => routeSource.onChange(listener),
    async stop() {
      stopping = true;
      clearTimeout(recountTimer);
      // Leadership goes first, so no write starts after the Lease is released to a follower.
      await elector?.stop();
      aggregator?.stop();
      await publisher?.stop();
      await Promise.all([routeSource.stop(), reports?.stop()]);
      // The queue stops taking keys at once; closing the client aborts a PATCH still in flight, which
      // a hung apiserver could otherwise hold for the whole request timeout.
      const drained = queue.shutdown();
      await client.close();
      await drained;
    },
  };

  return {
    source,
    statusSink: writer,
    // Each proxy proves its namespace with its projected service-account token (audience fhirmesh).
    authenticate: tokenReviewAuthenticator(kubeTokenReviewer(client, logger)),
    attach(controller) {
      if (attached !== undefined) throw new Error('kubernetes mode was attached twice');
      attached = controller;
      writer.useDesiredStatus((key, cached) => desiredStatus(controller, key, cached));
      controller.registry.onChange(() => {
        publisher?.changed();
        recountSoon();
      });
      controller.store.subscribe(() => {
        publisher?.changed();
        recountSoon();
      });
      startPublisher();
    },
    internals: { client, routes, services, secrets, reports, writer, queue, leadership, replicaId, leaseNamespace },
  };
}

function loadKubeConfig(file: string | undefined): KubeConfig {
  const config = new KubeConfig();
  try {
    if (file === undefined) config.loadFromCluster();
    else config.loadFromFile(file);
  } catch (err) {
    const what = file === undefined ? 'the in-cluster configuration' : `--kubeconfig ${file}`;
    // YAML errors come with a code frame over several lines; the start-up failure is one line.
    const why = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
    throw new ControllerError('FHIRMESH_SOURCE_UNREADABLE', `cannot read ${what}: ${why}: give a readable kubeconfig file`, { cause: err });
  }
  if (config.getCurrentCluster() === null) {
    throw new ControllerError('FHIRMESH_SOURCE_UNREADABLE', `--kubeconfig ${file ?? ''} names no current cluster: set current-context to a context with a cluster`);
  }
  return config;
}

function contextNamespace(config: KubeConfig): string | undefined {
  const namespace = config.getContextObject(config.getCurrentContext())?.namespace;
  return namespace === undefined || namespace === '' ? undefined : namespace.trim();
}

function collection(prefix: string, plural: string, namespace: string | undefined): string {
  return namespace === undefined ? `${prefix}/${plural}` : `${prefix}/namespaces/${namespace}/${plural}`;
}

/** The leader tidies up reports of replicas that are gone; only if unchanged since it judged them dead. */
async function deleteReport(client: KubeClient, key: string, resourceVersion: string | undefined): Promise<void> {
  const { namespace, name } = splitKey(key);
  await client
    .request({
      method: 'DELETE',
      path: `/api/v1/namespaces/${namespace}/configmaps/${name}`,
      body: { apiVersion: 'v1', kind: 'DeleteOptions', ...(resourceVersion === undefined ? {} : { preconditions: { resourceVersion } }) },
      timeoutMs: 5_000,
    })
    .catch(() => undefined);
}
