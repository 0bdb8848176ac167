// node:http and node:https for the proxy, fetched with process.getBuiltinModule instead of an ESM
// import: building the ESM namespace of node:http touches its lazy exports and loads Node's bundled
// undici, about 10 MiB of RSS per sidecar for nothing (bench/forwarding load-cost, bench/memory).

import type * as Http from 'node:http';
import type * as Https from 'node:https';

export const http: typeof Http = process.getBuiltinModule('node:http');
export const https: typeof Https = process.getBuiltinModule('node:https');
