#!/usr/bin/env node
// fhirmesh-proxy: reads flags, refuses bad ones with one line (exit 2), starts the proxy (one line,
// exit 1, if it cannot) and stops it gracefully on SIGTERM/SIGINT (stop accepting, finish in-flight, exit 0).

import { FlagError, parseProxyFlags, PROXY_USAGE } from './config/flags.ts';
import { startProxy } from './start-proxy.ts';

let config;
try {
  config = parseProxyFlags(process.argv.slice(2), process.env);
} catch (err) {
  const message = err instanceof FlagError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? (err as Error).message : String(err);
  // One line (node:util parseArgs writes some errors over several), as the usage text would bury it
  // in a container log; --help prints the usage.
  process.stderr.write(`fhirmesh-proxy: ${message.replace(/\s*\n\s*/g, ' ')} (fhirmesh-proxy --help lists every flag)\n`);
  process.exit(2);
}
if (config === 'help') {
  process.stdout.write(PROXY_USAGE);
  process.exit(0);
}

const proxy = await startProxy(config).catch((err: unknown) => {
  process.stderr.write(`fhirmesh-proxy: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
let stopping = false;
const stop = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), level: 'info', component: 'proxy', msg: 'shutting down', signal }) + '\n');
  proxy.shutdown().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`fhirmesh-proxy: shutdown failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
