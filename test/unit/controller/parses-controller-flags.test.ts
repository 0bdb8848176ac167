// Pins fhirmesh-controller's flags: the defaults, the two modes, and the one-line refusals of bad
// values and combinations.

import { describe, expect, it } from 'vitest';
import { parseControllerFlags } from '../../../controller/src/index.ts';

describe('parseControllerFlags', () => {
  it('reads standalone mode with the defaults', () => {
    expect(parseControllerFlags(['--routes-dir', 'routes'], {})).toEqual({
      source: { kind: 'directory', routesDir: 'routes' },
      grpcListen: { host: '0.0.0.0', port: 15010 },
      adminListen: { host: '127.0.0.1', port: 9902 },
      batchWindowMs: 100,
      ackTimeoutMs: 15_000,
      logLevel: 'info',
    });
  });

  it('reads every flag', () => {
    const config = parseControllerFlags(
      ['--routes-dir', 'r', '--grpc-listen', '[::1]:0', '--admin-listen', ':9999', '--namespace', 'payers', '--batch-window', '50ms', '--ack-timeout', '2s', '--log-level', 'debug'],
      {},
    );
    expect(config).toEqual({
      source: { kind: 'directory', routesDir: 'r' },
      grpcListen: { host: '::1', port: 0 },
      adminListen: { host: '0.0.0.0', port: 9999 },
      namespace: 'payers',
      batchWindowMs: 50,
      ackTimeoutMs: 2_000,
      logLevel: 'debug',
    });
  });

  it('chooses Kubernetes mode with --kubeconfig, or in a cluster without --routes-dir', () => {
    expect(parseControllerFlags(['--kubeconfig', 'k'], {})).toMatchObject({ source: { kind: 'kubernetes', kubeconfig: 'k' } });
    expect(parseControllerFlags([], { KUBERNETES_SERVICE_HOST: '10.0.0.1' })).toMatchObject({ source: { kind: 'kubernetes' } });
    expect(parseControllerFlags(['--routes-dir', 'r'], { KUBERNETES_SERVICE_HOST: '10.0.0.1' })).toMatchObject({ source: { kind: 'directory' } });
  });

  it.each([
    [[], '--routes-dir DIR (standalone) or --kubeconfig FILE is required outside a cluster'],
    [['--routes-dir', 'r', '--kubeconfig', 'k'], '--routes-dir and --kubeconfig exclude each other: routes come from a directory (standalone) or from Kubernetes, not both'],
    [['--routes-dir', 'r', '--grpc-listen', '15010'], "--grpc-listen '15010' must be HOST:PORT, e.g. 127.0.0.1:15010"],
    [['--routes-dir', 'r', '--grpc-listen', '127.0.0.1:9902', '--admin-listen', '127.0.0.1:9902'], '--grpc-listen and --admin-listen must differ'],
    [['--routes-dir', 'r', '--ack-timeout', '0ms'], "--ack-timeout '0ms' must be a duration from 1ms to 600s, written like 50ms, 2s or 1m"],
    [['--routes-dir', 'r', '--batch-window', '1h'], "--batch-window '1h' must be a duration from 0ms to 10s, written like 50ms, 2s or 1m"],
    [['--routes-dir', 'r', '--namespace', 'Payers'], "--namespace 'Payers' must be a namespace name (lowercase letters, digits and '-', at most 63)"],
    [['--routes-dir', 'r', '--log-level', 'loud'], "--log-level 'loud' must be debug, info, warn or error"],
  ])('refuses %j', (argv, message) => {
    expect(() => parseControllerFlags(argv, {})).toThrow(message);
  });
});
