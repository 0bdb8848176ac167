// Kubernetes mode: informers → route watcher; desired statuses written by a leader-gated work queue;
// leader election; proxy reports between replicas. One lifecycle, driven by the watcher's start/stop.

import { KubeConfig } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, type FhirRoute, type FhirRouteStatus } from '../../../../api/index.ts';
import type { Logger } from '../../../../runtime/index.ts';
import { tokenReviewAuthenticator } from '../../auth/index.ts';
import type { KubernetesSourceConfig } from '../../config/flags.ts';
import type { AttachedController, ControllerMode } from '../../controller-mode.ts';
import type { Authenticator } from '../../discovery/index.ts';
import { ControllerError } from '../../errors.ts';
import type { RouteWatcher, SourceState } from '../../sources/index.ts';
import type { ProxyView } from '../../status/index.ts';
import { type ChangeTracer, NO_TRACING } from '../../telemetry/change-tracer.ts';
import type { ControllerMetrics } from '../../telemetry/metrics.ts';
import { TokenBucket } from './backoff.ts';
import { KubeClient } from './kube-client.ts';
import { KubernetesMetrics } from './kubernetes-metrics.ts';
import { KubernetesRouteSource, projectRoute, projectSecret, projectService, type SecretData, type ServiceEntry } from './kubernetes-route-source.ts';
import { ALWAYS_LEADER, kubeLeaseStore, LeaderElector, type Leadership } from './leader-election.ts';
import { splitKey, type KubeObject } from './objects.ts';
import { REPORT_LABEL } from './proxy-reports.ts';
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

export interface KubernetesModeOptions {
  /** The flags of Kubernetes mode: kubeconfig (in-cluster when absent), replica id, leader election. */
  source: KubernetesSourceConfig;
  /** Watch one namespace; all when absent. */
  namespace?: string;
  logger: Logger;
  metrics: ControllerMetrics;
  tracer?: ChangeTracer;
  tuning?: KubernetesTuning;
}

/**
 * Secrets the controller never needs, left out of the watch by type: Helm keeps whole releases in
 * Secrets (often hundreds of KiB each) and the rest hold credentials of other kinds. A TLS Secret
 * (kubernetes.io/tls) or an Opaque one with ca.crt still comes through.
 */
const SECRET_FIELD_SELECTOR = [
  'helm.sh/release.v1',
  'kubernetes.io/service-account-token',
  'kubernetes.io/dockerconfigjson',
  'kubernetes.io/dockercfg',
  'bootstrap.kubernetes.io/token',
]
  .map((type) => `type!=${type}`)
  .join(',');

/** Builds everything, starts nothing (the watcher's start() does). */
export function createKubernetesMode(options: KubernetesModeOptions): Promise<KubernetesMode> {
  try {
    return Promise.resolve(new KubernetesMode(options));
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

/** Kubernetes mode's parts are its fields: tests that drive the informers read them from here. */
export class KubernetesMode implements ControllerMode {
  readonly source: RouteWatcher;
  readonly authenticate: Authenticator;
  readonly controllerId: string;
  readonly logger: Logger;
  readonly metrics: ControllerMetrics;
  readonly tracer: ChangeTracer;
  readonly statusSink: RouteStatusWriter;
  /** The authenticated client, shared by informers, status writes, leader election and TokenReview. */
  readonly client: KubeClient;
  readonly routes: ResilientInformer<FhirRoute>;
  readonly services: ResilientInformer<ServiceEntry>;
  readonly secrets: ResilientInformer<SecretData>;
  /** Other replicas' proxy reports; only with leader election (when there can be several replicas). */
  readonly reports: ResilientInformer<ReportEntry> | undefined;
  readonly queue: WorkQueue;
  readonly leadership: Leadership;
  readonly leaseNamespace: string | undefined;
  readonly #elector: LeaderElector | undefined;
  readonly #aggregator: ProxyReportAggregator | undefined;
  readonly #reportTiming: ReportTiming | undefined;
  readonly #routeSource: KubernetesRouteSource;
  #attached: AttachedController | undefined;
  #publisher: ProxyReportPublisher | undefined;
  #started = false;
  #stopping = false;
  /** This replica's pod: owner of its proxy report, so the garbage collector removes it with the pod. */
  readonly #replicaPod: { name: string; uid: string } | undefined;

  constructor(options: KubernetesModeOptions) {
    const { logger, source: flags } = options;
    const tuning = options.tuning ?? {};
    const config = tuning.kubeConfig ?? loadKubeConfig(flags.kubeconfig);
    const client = new KubeClient(config);
    const metrics = new KubernetesMetrics(options.metrics.registry);
    const scope = options.namespace;
    const replicaId = flags.replicaId;
    this.client = client;
    this.logger = logger;
    this.metrics = options.metrics;
    this.tracer = options.tracer ?? NO_TRACING;
    this.controllerId = replicaId;
    this.#replicaPod = flags.replicaPod;

    const informer = <T>(resource: string, path: string, project: (object: KubeObject) => T, selectors: { labelSelector?: string; fieldSelector?: string } = {}): ResilientInformer<T> =>
      new ResilientInformer<T>({ resource, config, client, path, project, logger, metrics, ...selectors, ...(tuning.informer === undefined ? {} : { timing: tuning.informer }) });
    this.routes = informer<FhirRoute>(`fhirroutes.${API_GROUP}`, collection(`/apis/${API_VERSION}`, 'fhirroutes', scope), projectRoute);
    this.services = informer<ServiceEntry>('services', collection('/api/v1', 'services', scope), projectService);
    this.secrets = informer<SecretData>('secrets', collection('/api/v1', 'secrets', scope), projectSecret, { fieldSelector: SECRET_FIELD_SELECTOR });
    this.#routeSource = new KubernetesRouteSource({ routes: this.routes, services: this.services, secrets: this.secrets, ...(scope === undefined ? {} : { namespace: scope }), logger });

    const election = flags.leaderElection;
    this.leaseNamespace = election === undefined ? undefined : (election.leaseNamespace ?? contextNamespace(config) ?? 'default');
    this.#elector =
      election === undefined || this.leaseNamespace === undefined
        ? undefined
        : new LeaderElector({
            store: kubeLeaseStore(client, this.leaseNamespace, election.leaseName, Math.max(1_000, election.retryPeriodMs)),
            identity: replicaId,
            timing: election,
            logger,
          });
    this.leadership = this.#elector ?? ALWAYS_LEADER;

    this.queue = new WorkQueue({
      workers: 2,
      onError: (key, err) => {
        if (this.#stopping) return;
        metrics.queueRetried();
        logger.log('warn', 'route status write failed; retrying with backoff', { route: key, error: err instanceof Error ? err.message : String(err) });
      },
      onDepth: (depth) => metrics.queueDepth(depth),
      ...tuning.statusQueue,
    });
    this.statusSink = new RouteStatusWriter({
      patcher: tuning.statusPatcher ?? kubeStatusPatcher(client),
      routes: this.routes,
      desired: (key) => this.#attached?.statuses.desiredStatus(key),
      queue: this.queue,
      leader: this.leadership,
      logger,
      metrics,
      writeLimiter: new TokenBucket({ ratePerSecond: tuning.statusWritesPerSecond ?? 20, burst: tuning.statusWriteBurst ?? 50 }),
      ...(options.tracer === undefined ? {} : { tracer: options.tracer }),
      cause: () => this.#attached?.store.changeOf(this.#attached.store.current),
    });
    // Handlers only enqueue: a route edited, re-created, or its status changed by someone else.
    this.routes.onChange((key) => this.statusSink.enqueue(key));
    this.leadership.onChange((leading) => {
      options.metrics.leading(leading);
      if (!leading) return;
      // Statuses computed as a follower, again against what the old leader wrote (its transition
      // times), then every route is compared with its stored status.
      this.#attached?.reconciler.reconcile();
      this.statusSink.enqueueAll();
    });
    options.metrics.leading(this.leadership.isLeader());

    // Cross-replica ACK state: only with leader election, i.e. when there can be several replicas.
    this.#reportTiming = election === undefined ? undefined : { ...reportTimingFor(election.leaseDurationMs), ...tuning.reports };
    const reportTiming = this.#reportTiming;
    const reports =
      reportTiming === undefined || this.leaseNamespace === undefined
        ? undefined
        : informer<ReportEntry>('configmaps (proxy reports)', `/api/v1/namespaces/${this.leaseNamespace}/configmaps`, projectReport, { labelSelector: `${REPORT_LABEL}=true` });
    this.reports = reports;
    this.#aggregator =
      reports === undefined || reportTiming === undefined
        ? undefined
        : new ProxyReportAggregator({
            reports,
            replica: replicaId,
            ttlMs: reportTiming.ttlMs,
            logger,
            onChange: () => {
              metrics.liveReports(this.#aggregator?.liveCount ?? 0);
              this.#attached?.reconciler.schedule();
            },
            onExpired: (keys) => {
              if (this.leadership.isLeader()) for (const key of keys) void deleteReport(client, key, reports.resourceVersionOf(key));
            },
          });

    // Each proxy proves its namespace with its projected service-account token (audience fhirmesh).
    this.authenticate = tokenReviewAuthenticator(kubeTokenReviewer(client, logger));
    this.source = {
      description: this.#routeSource.description,
      start: () => this.#start(scope, election?.leaseName),
      state: (): SourceState => this.#routeSource.state(),
      onChange: (listener) => this.#routeSource.onChange(listener),
      stop: () => this.#stop(),
    };
  }

  /** Other replicas' live reports, freshest first: the status counts their proxies after this replica's. */
  remoteProxyViews(): ProxyView[][] {
    return this.#aggregator?.remoteViews() ?? [];
  }

  /** The status as the informer cache has it: what was last written, by whichever replica. */
  storedStatus(key: string): FhirRouteStatus | undefined {
    return this.routes.get(key)?.status;
  }

  attach(controller: AttachedController): void {
    if (this.#attached !== undefined) throw new Error('kubernetes mode was attached twice');
    this.#attached = controller;
    // This replica's proxies changed: its report says so, soon.
    controller.registry.onChange(() => this.#publisher?.changed());
    controller.store.subscribe(() => this.#publisher?.changed());
    this.#startPublisher();
  }

  async #start(scope: string | undefined, leaseName: string | undefined): Promise<void> {
    this.logger.log('info', 'kubernetes mode starting', {
      server: this.client.server,
      watching: scope ?? 'all namespaces',
      replica: this.controllerId,
      leaderElection: this.#elector === undefined ? 'off (this replica writes status)' : `${this.leaseNamespace}/${leaseName}`,
    });
    await Promise.all([this.#routeSource.start(), this.reports?.start()]);
    this.queue.run(async (key) => {
      await this.statusSink.reconcile(key);
    });
    this.#aggregator?.start();
    this.#elector?.start();
    this.#started = true;
    this.#startPublisher();
  }

  #startPublisher(): void {
    const registry = this.#attached?.registry;
    if (!this.#started || registry === undefined || this.#reportTiming === undefined || this.leaseNamespace === undefined || this.#publisher !== undefined) return;
    this.#publisher = new ProxyReportPublisher({
      client: this.client,
      namespace: this.leaseNamespace,
      replica: this.controllerId,
      ...(this.#replicaPod === undefined ? {} : { ownerPod: this.#replicaPod }),
      proxies: () => registry.list(),
      timing: this.#reportTiming,
      logger: this.logger,
    });
    this.#publisher.start();
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    // Leadership goes first, so no write starts after the Lease is released to a follower.
    await this.#elector?.stop();
    this.#aggregator?.stop();
    await this.#publisher?.stop();
    await Promise.all([this.#routeSource.stop(), this.reports?.stop()]);
    // The queue stops taking keys at once; closing the client aborts a PATCH still in flight, which
    // a hung apiserver could otherwise hold for the whole request timeout.
    const drained = this.queue.shutdown();
    await this.client.close();
    await drained;
  }
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
