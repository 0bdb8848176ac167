#!/usr/bin/env node
// fhirmesh-proxy: reads flags, refuses bad ones with one line (exit 2), starts the proxy (one line,
// exit 1, if it cannot) and stops it gracefully on SIGTERM/SIGINT (stop accepting, finish in-flight, exit 0).

import { exitStartFailure, flagsOrExit, stopOnSignals } from '../../runtime/index.ts';
import { FlagError, parseProxyFlags, PROXY_USAGE } from './config/flags.ts';
import { startProxy } from './start-proxy.ts';

const config = flagsOrExit('fhirmesh-proxy', PROXY_USAGE, () => parseProxyFlags(process.argv.slice(2), process.env), FlagError);
const proxy = await startProxy(config).catch((err: unknown) => exitStartFailure('fhirmesh-proxy', err));
stopOnSignals('fhirmesh-proxy', 'proxy', proxy);
