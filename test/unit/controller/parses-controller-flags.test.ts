// Pins fhirmesh-controller's flags: the defaults, the two modes, and the one-line refusals of bad
// values and combinations.

import { describe, expect, it } from 'vitest';
import { parseControllerFlags } from '../../../controller/src/index.ts';

describe('parseControllerFlags', () => {
  it('reads standalone mode with the defaults', () => {
    expect(parseControllerFlags(['--routes-dir', 'routes'], {})).toEqual({
      source: { kind: 'directory', routesDir: 'routes', pollMs: 10_000 },
      grpcListen: { host: '0.0.0.0', port: 15010 },
      adminListen: { host: '127.0.0.1', port: 9902 },
      batchWindowMs: 100,
      ackTimeoutMs: 15_000,
      logLevel: 'info',
    });
    expect(parseControllerFlags(['--routes-dir', 'routes', '--routes-dir-poll', '0s'], {})).toMatchObject({ source: { pollMs: 0 } });
    expect(parseControllerFlags(['--routes-dir', 'routes', '--routes-dir-poll', '0'], {})).toMatchObject({ source: { pollMs: 0 } });
  });

  it('reads every flag', () => {
    const config = parseControllerFlags(
      ['--routes-dir', 'r', '--routes-dir-poll', '30s', '--grpc-listen', '[::1]:0', '--admin-listen', ':9999', '--namespace', 'payers', '--batch-window', '50ms', '--ack-timeout', '2s', '--log-level', 'debug'],
      {},
    );
    expect(config).toEqual({
      source: { kind: 'directory', routesDir: 'r', pollMs: 30_000 },
      grpcListen: { host: '::1', port: 0 },
      adminListen: { host: '0.0.0.0', port: 9999 },
      namespace: 'payers',
      batchWindowMs: 50,
      ackTimeoutMs: 2_000,
      logLevel: 'debug',
    });
  });

  it('chooses Kubernetes mode with --kubeconfig, or in a cluster without --routes-dir', () => {
    const tls = ['--grpc-tls-cert', 'tls.crt', '--grpc-tls-key', 'tls.key'];
    expect(parseControllerFlags(['--kubeconfig', 'k', ...tls], {})).toMatchObject({ source: { kind: 'kubernetes', kubeconfig: 'k' } });
    expect(parseControllerFlags(tls, { KUBERNETES_SERVICE_HOST: '10.0.0.1' })).toMatchObject({ source: { kind: 'kubernetes' } });
    expect(parseControllerFlags(['--routes-dir', 'r'], { KUBERNETES_SERVICE_HOST: '10.0.0.1' })).toMatchObject({ source: { kind: 'directory' } });
  });

  it('serves TLS with both files, in either mode; plaintext in Kubernetes mode only with --insecure-grpc', () => {
    const tls = ['--grpc-tls-cert', '/tls/tls.crt', '--grpc-tls-key', '/tls/tls.key'];
    expect(parseControllerFlags(['--kubeconfig', 'k', ...tls], {})).toMatchObject({ grpcTls: { certFile: '/tls/tls.crt', keyFile: '/tls/tls.key' } });
    expect(parseControllerFlags(['--routes-dir', 'r', ...tls], {})).toMatchObject({ grpcTls: { certFile: '/tls/tls.crt', keyFile: '/tls/tls.key' } });
    const insecure = parseControllerFlags(['--kubeconfig', 'k', '--insecure-grpc'], {});
    expect(insecure).toMatchObject({ insecureGrpc: true });
    expect(insecure !== 'help' && insecure.grpcTls).toBe(undefined);
    // Standalone is plaintext by default; saying so changes nothing.
    expect(parseControllerFlags(['--routes-dir', 'r', '--insecure-grpc'], {})).toMatchObject({ insecureGrpc: true });
  });

  it.each([
    [
      ['--kubeconfig', 'k'],
      'Kubernetes mode serves proxies over TLS: give --grpc-tls-cert FILE --grpc-tls-key FILE (the chart mounts the Secret grpc.tls.secretName), or --insecure-grpc to serve plaintext on purpose',
    ],
    [['--routes-dir', 'r', '--grpc-tls-cert', 'c'], '--grpc-tls-cert and --grpc-tls-key go together: give both (the PEM certificate chain and its private key) or neither'],
    [['--kubeconfig', 'k', '--grpc-tls-key', 'k'], '--grpc-tls-cert and --grpc-tls-key go together: give both (the PEM certificate chain and its private key) or neither'],
    [['--kubeconfig', 'k', '--grpc-tls-cert', '', '--grpc-tls-key', 'k'], '--grpc-tls-cert needs a file'],
    [
      ['--kubeconfig', 'k', '--grpc-tls-cert', 'c', '--grpc-tls-key', 'k', '--insecure-grpc'],
      '--insecure-grpc and --grpc-tls-cert/--grpc-tls-key exclude each other: serve TLS or plaintext, not both',
    ],
  ])('refuses the TLS flags %j', (argv, message) => {
    expect(() => parseControllerFlags(argv, {})).toThrow(message);
  });

  it.each([
    [[], '--routes-dir DIR (standalone) or --kubeconfig FILE is required outside a cluster'],
    [['--routes-dir', 'r', '--kubeconfig', 'k'], '--routes-dir and --kubeconfig exclude each other: routes come from a directory (standalone) or from Kubernetes, not both'],
    [['--routes-dir', 'r', '--grpc-listen', '15010'], "--grpc-listen '15010' must be HOST:PORT, e.g. 127.0.0.1:15010"],
    [['--routes-dir', 'r', '--grpc-listen', '127.0.0.1:9902', '--admin-listen', '127.0.0.1:9902'], '--grpc-listen and --admin-listen must differ'],
    [['--routes-dir', 'r', '--ack-timeout', '0ms'], "--ack-timeout '0ms' must be a duration from 1ms to 600s, written like 50ms, 2s or 1m"],
    [['--routes-dir', 'r', '--batch-window', '1h'], "--batch-window '1h' must be a duration from 0ms to 10s, written like 50ms, 2s or 1m"],
    [['--routes-dir', 'r', '--routes-dir-poll', '10'], "--routes-dir-poll '10' must be 0s (watch only) or a duration from 100ms to 3600s, written like 500ms, 10s or 1m"],
    [['--routes-dir', 'r', '--routes-dir-poll', '5ms'], "--routes-dir-poll '5ms' must be 0s (watch only) or a duration from 100ms to 3600s, written like 500ms, 10s or 1m"],
    [['--kubeconfig', 'k', '--insecure-grpc', '--routes-dir-poll', '1s'], '--routes-dir-poll needs --routes-dir: Kubernetes mode watches the API, it has no directory to poll'],
    [['--routes-dir', 'r', '--namespace', 'Payers'], "--namespace 'Payers' must be a namespace name (lowercase letters, digits and '-', at most 63)"],
    [['--routes-dir', 'r', '--log-level', 'loud'], "--log-level 'loud' must be debug, info, warn or error"],
  ])('refuses %j', (argv, message) => {
    expect(() => parseControllerFlags(argv, {})).toThrow(message);
  });
  it('reads the four --injector-* flags together as the webhook to serve', () => {
    const config = parseControllerFlags(
      ['--routes-dir', 'r', '--injector-listen', ':9443', '--injector-tls-cert', 'tls.crt', '--injector-tls-key', 'tls.key', '--injector-config', 'injector.json'],
      {},
    );
    expect(config).toMatchObject({ injector: { listen: { host: '0.0.0.0', port: 9443 }, tlsCertFile: 'tls.crt', tlsKeyFile: 'tls.key', configFile: 'injector.json' } });
  });

  it('refuses some --injector-* flags without the others', () => {
    expect(() => parseControllerFlags(['--routes-dir', 'r', '--injector-listen', ':9443', '--injector-config', ''], {})).toThrow(
      'the injection webhook needs --injector-listen, --injector-tls-cert, --injector-tls-key, --injector-config together; missing or empty: --injector-tls-cert, --injector-tls-key, --injector-config',
    );
  });
  it('names the pod as the owner of its proxy report when the chart gives POD_NAME and POD_UID', () => {
    expect(parseControllerFlags(['--kubeconfig', 'k', '--insecure-grpc'], { POD_NAME: 'ctl-abc', POD_UID: 'f3a1' })).toMatchObject({
      source: { kind: 'kubernetes', replicaId: 'ctl-abc', replicaPod: { name: 'ctl-abc', uid: 'f3a1' } },
    });
    expect(parseControllerFlags(['--kubeconfig', 'k', '--insecure-grpc'], { POD_NAME: 'ctl-abc' })).not.toHaveProperty('source.replicaPod');
  });
});
