// Runs the real fhirmesh-controller (routes-directory mode) as a child process for tests: waits for
// "controller listening", exposes its gRPC and admin addresses, and stops or kills it.

import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { NODE_BIN } from './spawn-proxy.ts';

const CONTROLLER_MAIN = path.resolve(import.meta.dirname, '../../controller/src/main.ts');

export interface SpawnedController {
  child: ChildProcess;
  grpcAddress: string;
  adminUrl: string;
  logs: Record<string, unknown>[];
  /** SIGKILL and wait: the controller vanishing without a goodbye. */
  kill(): Promise<void>;
}

export async function spawnController(routesDir: string, grpcPort: number, extraArgs: string[] = [], options: { env?: Record<string, string> } = {}): Promise<SpawnedController> {
  const child = spawn(
    NODE_BIN,
    [CONTROLLER_MAIN, '--routes-dir', routesDir, '--grpc-listen', `127.0.0.1:${grpcPort}`, '--admin-listen', '127.0.0.1:0', '--batch-window', '20ms', ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'], ...(options.env === undefined ? {} : { env: { ...process.env, ...options.env } }) },
  );
  const logs: Record<string, unknown>[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const listening = new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`controller did not start: ${JSON.stringify(logs.slice(-5))}`)), 20_000);
    for (const stream of [child.stdout, child.stderr]) {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        partial += chunk;
        let at: number;
        while ((at = partial.indexOf('\n')) >= 0) {
          const text = partial.slice(0, at);
          partial = partial.slice(at + 1);
          let line: Record<string, unknown>;
          try {
            line = JSON.parse(text) as Record<string, unknown>;
          } catch {
            line = { raw: text };
          }
          logs.push(line);
          if (line.msg === 'controller listening') {
            clearTimeout(timer);
            resolve(line);
          }
        }
      });
    }
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`controller exited with ${code}: ${JSON.stringify(logs.slice(-5))}`));
    });
  });
  const line = await listening;
  return {
    child,
    grpcAddress: String(line.grpcAddress),
    adminUrl: String(line.adminUrl),
    logs,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** A port free right now, for a controller that must come back on the same address. */
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
