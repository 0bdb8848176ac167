// The HTTPS endpoint the apiserver calls for pod CREATE (POST /inject, AdmissionReview v1). Its
// serving pair is read again every 10 s (a rotated Secret volume), the controller's CA per review.

import fs from 'node:fs';
import https from 'node:https';
import { readKeyPair, watchKeyPair, type Logger } from '../../../runtime/index.ts';
import { reviewAdmission } from './admission-review.ts';
import { loadInjectionConfig } from './injection-config.ts';

export interface InjectorServeConfig {
  listen: { host: string; port: number };
  tlsCertFile: string;
  tlsKeyFile: string;
  configFile: string;
}

export interface RunningInjector {
  /** https://host:port of the listener. */
  url: string;
  close(): Promise<void>;
}

/** The apiserver sends at most about 3 MiB; a body above this is no pod. */
const MAX_BODY_BYTES = 6 * 1024 * 1024;

export async function startInjector(serve: InjectorServeConfig, options: { logger: Logger; reloadIntervalMs?: number }): Promise<RunningInjector> {
  const { logger } = options;
  const config = loadInjectionConfig(serve.configFile);
  const files = { certFile: serve.tlsCertFile, keyFile: serve.tlsKeyFile };
  const pair = readKeyPair(files);
  const server = https.createServer({ cert: pair.cert, key: pair.key, requestTimeout: 10_000 }, (req, res) => {
    if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== '/inject') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('the injection webhook answers POST /inject (AdmissionReview v1)\n');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        res.writeHead(413, { 'Content-Type': 'text/plain', Connection: 'close' }).end('AdmissionReview too large\n');
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (res.writableEnded) return;
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        res.writeHead(400, { 'Content-Type': 'text/plain' }).end('the body is not JSON: send an AdmissionReview\n');
        return;
      }
      const outcome = reviewAdmission(body, config, readCa(config.controllerTls?.caFile));
      const { result, pod } = outcome;
      if (result.kind === 'refused') logger.log('warn', 'pod admitted without the proxy', { pod, warning: result.warning });
      else if (result.kind === 'unchanged') logger.log('debug', 'pod left as it is', { pod, reason: result.reason });
      else logger.log('info', 'proxy injected', { pod, ...(result.warnings.length > 0 ? { warnings: result.warnings } : {}) });
      const text = JSON.stringify(outcome.review);
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
    });
  });

  const reload = watchKeyPair(files, pair, {
    logger,
    what: 'injection webhook',
    ...(options.reloadIntervalMs === undefined ? {} : { intervalMs: options.reloadIntervalMs }),
    apply: (next) => server.setSecureContext({ cert: next.cert, key: next.key }),
  });

  const bound = await new Promise<{ address: string; port: number }>((resolve, reject) => {
    server.once('error', reject);
    server.listen(serve.listen.port, serve.listen.host, () => {
      server.off('error', reject);
      const address = server.address();
      if (address === null || typeof address === 'string') reject(new Error('the injection listener has no TCP address'));
      else resolve(address);
    });
  }).catch((err: unknown) => {
    reload.close();
    throw new Error(`cannot listen on ${serve.listen.host}:${serve.listen.port} (--injector-listen): ${(err as Error).message}`, { cause: err });
  });
  const url = `https://${bound.address.includes(':') ? `[${bound.address}]` : bound.address}:${bound.port}`;
  logger.log('info', 'injection webhook listening', { url, path: '/inject', image: config.image, controllerAddress: config.controllerAddress });
  return {
    url,
    async close() {
      reload.close();
      server.closeIdleConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function readCa(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  try {
    const pem = fs.readFileSync(file, 'utf8');
    return pem.includes('-----BEGIN CERTIFICATE-----') ? pem : undefined;
  } catch {
    return undefined;
  }
}
