// Runs the real fhirmesh-controller (any mode: a routes directory, or --kubeconfig) as a child process
// for tests: resolves once it logs "controller listening", with its gRPC and admin addresses.

import net from 'node:net';
import path from 'node:path';
import { startLogged, type LoggedProcess } from './logged-process.ts';
import { metricValue } from './metrics.ts';

const CONTROLLER_MAIN = path.resolve(import.meta.dirname, '../../controller/src/main.ts');

export interface SpawnedController extends LoggedProcess {
  grpcAddress: string;
  adminUrl: string;
  /** A counter or gauge from its /metrics, summed over the label sets that match `labels`. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

/**
 * fhirmesh-controller with `args` after the tests' defaults (gRPC and admin on ephemeral loopback
 * ports, a 20 ms batch window); a flag given in `args` wins over its default.
 */
export async function spawnController(args: string[], options: { env?: Record<string, string> } = {}): Promise<SpawnedController> {
  const { process: controller, ready } = await startLogged(
    'controller',
    CONTROLLER_MAIN,
    ['--grpc-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--batch-window', '20ms', ...args],
    { env: options.env, ready: (line) => line.msg === 'controller listening' },
  );
  const adminUrl = String(ready['adminUrl']);
  return {
    ...controller,
    grpcAddress: String(ready['grpcAddress']),
    adminUrl,
    // A labelled counter nothing has incremented yet has no sample: that is 0 here.
    metric: async (name, labels = {}) => (await metricValue(adminUrl, name, labels)) ?? 0,
  };
}

/** A loopback port free right now: for a process that must come back on the same address, or one nothing listens on. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
