// What the observability tests receive from global-setup.ts: the paths of the real backends.

import net from 'node:net';
import { inject } from 'vitest';

export interface ObservabilityTools {
  jaeger: string;
  prometheus: string;
  promtool: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    fhirmeshObservability: ObservabilityTools;
  }
}

export function observabilityTools(): ObservabilityTools {
  const tools = inject('fhirmeshObservability');
  if (!tools) throw new Error('no tools were provided: run these tests with --config test/observability/vitest.config.ts');
  return tools;
}

/** Ports free right now on 127.0.0.1, all distinct, for servers whose config is written before they start. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}
