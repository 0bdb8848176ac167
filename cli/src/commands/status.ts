// `fhirmesh status --controller HOST:PORT`: asks a controller (GetProxyStatus) which proxies are
// connected and prints one line per proxy, marked SYNCED / STALE / NACKED like istioctl proxy-status.

import * as grpc from '@grpc/grpc-js';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { discoveryProto, type GetProxyStatusResponse__Output, type ProxyStatus__Output } from '../../../api/discovery/index.ts';

const USAGE = 'usage: fhirmesh status --controller HOST:PORT [--ca FILE [--server-name NAME]] [--timeout SECONDS]\n';

export async function statusCommand(args: string[]): Promise<number> {
  let controller: string | undefined;
  let timeoutSeconds = 5;
  let tls: { caPem: Buffer; serverName: string | undefined } | undefined;
  try {
    const { values } = parseArgs({
      args,
      options: { controller: { type: 'string' }, timeout: { type: 'string' }, ca: { type: 'string' }, 'server-name': { type: 'string' } },
      strict: true,
      allowPositionals: false,
    });
    controller = values.controller;
    // A controller in Kubernetes mode serves TLS only: trust its CA as proxies do (--controller-ca).
    if (values.ca !== undefined) tls = { caPem: fs.readFileSync(values.ca), serverName: values['server-name'] };
    if (values.timeout !== undefined) timeoutSeconds = Number(values.timeout);
  } catch (err) {
    process.stderr.write(`fhirmesh status: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (controller === undefined || !/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(controller)) {
    process.stderr.write(`fhirmesh status: --controller HOST:PORT is required (the controller's --grpc-listen address, e.g. 127.0.0.1:15010)\n${USAGE}`);
    return 2;
  }
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
    process.stderr.write(`fhirmesh status: --timeout must be a number of seconds > 0\n`);
    return 2;
  }

  let response: GetProxyStatusResponse__Output;
  try {
    response = await getProxyStatus(controller, timeoutSeconds * 1000, tls);
  } catch (err) {
    const serviceError = err as Partial<grpc.ServiceError>;
    const why = serviceError.code === undefined ? String(err) : `${grpc.status[serviceError.code]}: ${serviceError.details ?? ''}`;
    process.stderr.write(
      `fhirmesh status: cannot reach the controller at ${controller} (${why}); check --controller and that fhirmesh-controller is running and listening there\n`,
    );
    return 1;
  }
  process.stdout.write(formatStatus(response, controller));
  return 0;
}

function getProxyStatus(
  address: string,
  timeoutMs: number,
  tls: { caPem: Buffer; serverName: string | undefined } | undefined,
): Promise<GetProxyStatusResponse__Output> {
  const credentials = tls === undefined ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(tls.caPem);
  const options = tls?.serverName === undefined ? {} : { 'grpc.ssl_target_name_override': tls.serverName, 'grpc.default_authority': tls.serverName };
  const client = new (discoveryProto().fhirmesh.v1.RouteDiscovery)(address, credentials, options);
  return new Promise<GetProxyStatusResponse__Output>((resolve, reject) => {
    client.GetProxyStatus({}, { deadline: Date.now() + timeoutMs }, (err, response) => {
      if (err !== null) reject(err);
      else if (response === undefined) reject(new Error('empty response'));
      else resolve(response);
    });
  }).finally(() => client.close());
}

const COLUMNS = ['NODE ID', 'NAMESPACE', 'ACKED', 'TARGET', 'STATE', 'NACK'] as const;

/** A header and one line per proxy, sorted by node id then namespace; "-" where a version is empty. */
export function formatStatus(response: GetProxyStatusResponse__Output, controller: string): string {
  if (response.proxies.length === 0) return `no proxies are connected to controller ${response.controllerId} (${controller})\n`;
  const rows = [...response.proxies]
    .sort((a, b) => compare(nodeIdOf(a), nodeIdOf(b)) || compare(namespaceOf(a), namespaceOf(b)))
    .map((p) => [
      nodeIdOf(p),
      namespaceOf(p),
      p.ackedVersion || '-',
      p.targetVersion || '-',
      p.syncState,
      p.nackMessage === '' ? '' : `version ${p.nackedVersion}: ${p.nackMessage.replace(/\s+/g, ' ')}`,
    ]);
  const widths = COLUMNS.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd() + '\n';
  return line(COLUMNS) + rows.map(line).join('');
}

function nodeIdOf(p: ProxyStatus__Output): string {
  return p.identity?.nodeId ?? '';
}

function namespaceOf(p: ProxyStatus__Output): string {
  return p.identity?.namespace ?? '';
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
