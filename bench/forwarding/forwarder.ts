// Child process: one forwarding engine behind a node:http server on loopback. It imports
// only the engine it runs, so its RSS is that engine's cost. Run by run.ts, not directly.
import type { AddressInfo } from 'node:net';
import type { ForwardingEngine, UpstreamAddress } from './engines/engine.ts';
import type { ForwarderArguments, ListeningMessage } from './internal/messages.ts';
import { sampleProcess, sendToParent, serveParent, settle } from './internal/process-stats.ts';

// Not `import ... from 'node:http'`: an ES module namespace of node:http reads every export,
// and the WebSocket getter among them loads Node's bundled undici (~12 MB RSS; measured by
// the load-cost rows). getBuiltinModule hands over the CommonJS exports without touching it.
const { createServer } = process.getBuiltinModule('node:http');

async function loadEngine(args: ForwarderArguments, upstream: UpstreamAddress): Promise<ForwardingEngine> {
  switch (args.engine) {
    case 'http-proxy':
      return (await import('./engines/http-proxy.ts')).createEngine(upstream);
    case 'undici':
      return (await import('./engines/undici.ts')).createEngine(upstream, args.undiciApi);
    case 'node-http':
      return (await import('./engines/node-http.ts')).createEngine(upstream);
  }
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '') as ForwarderArguments;
  serveParent();
  const engine = await loadEngine(args, { hostname: '127.0.0.1', port: args.upstreamPort });
  const server = createServer(engine.handleRequest);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  await settle(300);
  const listening: ListeningMessage = {
    type: 'listening',
    port: (server.address() as AddressInfo).port,
    idle: sampleProcess(true),
  };
  sendToParent(listening);
}

await main();
