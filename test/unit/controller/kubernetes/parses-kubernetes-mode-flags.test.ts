// Pins the flags of Kubernetes mode: replica id and leader election with their defaults from the
// downward API, and the one-line refusals of combinations that cannot work.

import { describe, expect, it } from 'vitest';
import { parseControllerFlags } from '../../../../controller/src/index.ts';

// Kubernetes mode requires TLS on the gRPC listener (parses-controller-flags pins that refusal).
const TLS = ['--grpc-tls-cert', 'tls.crt', '--grpc-tls-key', 'tls.key'];

describe('parseControllerFlags in Kubernetes mode', () => {
  it('names the replica after POD_NAME, and has no leader election unless asked', () => {
    expect(parseControllerFlags(['--kubeconfig', 'k', ...TLS], { POD_NAME: 'ctrl-7f9-abcde' })).toMatchObject({
      source: { kind: 'kubernetes', kubeconfig: 'k', replicaId: 'ctrl-7f9-abcde' },
    });
    const config = parseControllerFlags(['--kubeconfig', 'k', '--replica-id', 'a', ...TLS], { POD_NAME: 'ignored' });
    expect(config).toMatchObject({ source: { replicaId: 'a' } });
    expect(config !== 'help' && config.source.kind === 'kubernetes' && config.source.leaderElection).toBe(undefined);
  });

  it('reads leader election with client-go defaults and the Lease in POD_NAMESPACE', () => {
    expect(parseControllerFlags(['--leader-elect', ...TLS], { KUBERNETES_SERVICE_HOST: '10.0.0.1', POD_NAME: 'p', POD_NAMESPACE: 'fhirmesh-system' })).toMatchObject({
      source: {
        kind: 'kubernetes',
        leaderElection: { leaseName: 'fhirmesh-controller', leaseNamespace: 'fhirmesh-system', leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 },
      },
    });
    const fast = parseControllerFlags(
      ['--kubeconfig', 'k', '--leader-elect', '--lease-name', 'ctl', '--lease-namespace', 'ops', '--leader-elect-lease-duration', '3s', '--leader-elect-renew-deadline', '2s', '--leader-elect-retry-period', '500ms', ...TLS],
      { POD_NAMESPACE: 'ignored' },
    );
    expect(fast).toMatchObject({ source: { leaderElection: { leaseName: 'ctl', leaseNamespace: 'ops', leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 } } });
  });

  it.each([
    [['--routes-dir', 'r', '--leader-elect'], '--leader-elect need Kubernetes mode (--kubeconfig FILE, or in a cluster), not --routes-dir'],
    [['--routes-dir', 'r', '--replica-id', 'a', '--lease-name', 'x'], '--replica-id, --lease-name need Kubernetes mode (--kubeconfig FILE, or in a cluster), not --routes-dir'],
    [['--kubeconfig', 'k', '--lease-name', 'x'], '--lease-name only apply with --leader-elect'],
    [['--kubeconfig', 'k', '--leader-elect', '--lease-name', 'Bad_Name'], "--lease-name 'Bad_Name' must be a Kubernetes object name (lowercase letters, digits, '-' and '.')"],
    [['--kubeconfig', 'k', '--leader-elect', '--lease-namespace', 'Ops'], "--lease-namespace 'Ops' must be a namespace name (lowercase letters, digits and '-', at most 63)"],
    [
      ['--kubeconfig', 'k', '--leader-elect', '--leader-elect-lease-duration', '2s', '--leader-elect-renew-deadline', '2s'],
      '--leader-elect-lease-duration must exceed --leader-elect-renew-deadline, which must exceed --leader-elect-retry-period (e.g. 15s, 10s, 2s)',
    ],
    [['--kubeconfig', 'k', '--replica-id', 'has space'], "--replica-id 'has space' must be 1-253 characters without spaces (the pod name in a cluster)"],
  ])('refuses %j', (argv, message) => {
    expect(() => parseControllerFlags(argv, {})).toThrow(message);
  });
});
