// The real proxy binary refuses a missing --routes, a bad --listen, --intermediary-id and friends with
// exit 2 and exactly one line on stderr naming the flag (or FHIRMESH_* variable) and the value; an
// address it cannot bind is one line and exit 1; FHIRMESH_ROUTES and FHIRMESH_LISTEN configure it.

import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeYaml } from '../support/proxy-fixture.ts';
import { makeRoutesDir, runProxyToExit, spawnProxy, type RoutesDir } from '../support/spawn-proxy.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';

let upstream: TestUpstream;
let routes: RoutesDir;

beforeAll(async () => {
  upstream = await startUpstream();
  routes = makeRoutesDir(routeYaml('acme', `
destination: acme-payer
addressing:
  header: true
backend:
  url: ${upstream.url}/r4`));
});

afterAll(async () => {
  await upstream.close();
  routes.remove();
});

/** stderr must be exactly one line: the refusal, not a stack trace or a usage page. */
function onlyLine(stderr: string): string {
  const lines = stderr.split('\n');
  expect(lines, stderr).toHaveLength(2);
  expect(lines[1]).toBe('');
  return lines[0] ?? '';
}

const refusals: { what: string; args: string[]; env?: Record<string, string>; noRoutes?: true; line: RegExp }[] = [
  {
    what: 'no --routes and no FHIRMESH_ROUTES',
    args: [],
    noRoutes: true,
    line: /give --routes FILE \(standalone\) or --controller HOST:PORT/,
  },
  {
    what: '--routes together with --controller',
    args: ['--controller', '127.0.0.1:15010'],
    line: /--routes and --controller exclude each other/,
  },
  {
    what: '--controller with a bad namespace',
    args: ['--controller', '127.0.0.1:15010', '--namespace', 'Not_A_Namespace'],
    noRoutes: true,
    line: /--namespace 'Not_A_Namespace' must be a Kubernetes namespace name/,
  },
  { what: '--listen without a port', args: ['--listen', '127.0.0.1'], line: /--listen '127\.0\.0\.1' must be HOST:PORT/ },
  { what: '--listen with a port above 65535', args: ['--listen', '127.0.0.1:65536'], line: /--listen '127\.0\.0\.1:65536' must be HOST:PORT/ },
  { what: '--listen with a service name', args: ['--listen', 'localhost:http'], line: /--listen 'localhost:http' must be HOST:PORT/ },
  { what: '--admin-listen that is not an address', args: ['--admin-listen', 'admin'], line: /--admin-listen 'admin' must be HOST:PORT/ },
  { what: '--intermediary-id with a space', args: ['--intermediary-id', 'gw one'], line: /--intermediary-id 'gw one' must be 1-63 letters/ },
  { what: '--intermediary-id with a slash', args: ['--intermediary-id', 'gw/one'], line: /--intermediary-id 'gw\/one' must be 1-63 letters/ },
  { what: '--intermediary-id of 64 characters', args: ['--intermediary-id', 'g'.repeat(64)], line: /--intermediary-id 'g{64}' must be 1-63 letters/ },
  { what: 'a negative --shutdown-grace', args: ['--shutdown-grace=-1'], line: /--shutdown-grace '-1' must be a number of seconds >= 0/ },
  {
    what: 'a flag value that looks like a flag (parseArgs explains over several lines)',
    args: ['--shutdown-grace', '-1'],
    line: /Option '--shutdown-grace' argument is ambiguous\. Did you forget/,
  },
  { what: '--routes without a value', args: ['--listen', '127.0.0.1:0', '--routes'], noRoutes: true, line: /Option '--routes <value>' argument missing/ },
  { what: 'an unknown flag', args: ['--listne', '127.0.0.1:0'], line: /Unknown option '--listne'/ },
  {
    what: 'a bad FHIRMESH_LISTEN, named as the variable',
    args: [],
    env: { FHIRMESH_LISTEN: '8080' },
    line: /FHIRMESH_LISTEN '8080' must be HOST:PORT/,
  },
  {
    what: 'an empty FHIRMESH_SHUTDOWN_GRACE (not silently 0 s)',
    args: [],
    env: { FHIRMESH_SHUTDOWN_GRACE: '' },
    line: /FHIRMESH_SHUTDOWN_GRACE '' must be a number of seconds >= 0/,
  },
];

describe('bad flags', () => {
  it.each(refusals)('exits 2 with one line for $what', async ({ args, env, noRoutes, line }) => {
    // Loopback port 0 wherever the case leaves a listener unset, so a wrongly accepted case binds nothing shared.
    const full = [
      ...(noRoutes === true ? [] : ['--routes', routes.file]),
      ...(args.includes('--listen') || env?.FHIRMESH_LISTEN !== undefined ? [] : ['--listen', '127.0.0.1:0']),
      ...(args.includes('--admin-listen') ? [] : ['--admin-listen', '127.0.0.1:0']),
      ...args,
    ];
    const result = await runProxyToExit(full, { ...(env === undefined ? {} : { env }), timeoutMs: 5_000 });
    expect(result.code, result.stderr).toBe(2);
    expect(onlyLine(result.stderr)).toMatch(new RegExp(`^fhirmesh-proxy: .*${line.source}`));
    expect(result.stdout).toBe('');
  });

  it('exits 1 with one line naming the address and the flag when --listen is taken', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as net.AddressInfo).port;
    try {
      const result = await runProxyToExit(['--routes', routes.file, '--listen', `127.0.0.1:${port}`, '--admin-listen', '127.0.0.1:0']);
      expect(result.code, result.stderr).toBe(1);
      // Log lines (the table loaded) go to stdout; stderr holds only the reason it cannot start.
      expect(onlyLine(result.stderr)).toBe(
        `fhirmesh-proxy: cannot start: cannot listen on 127.0.0.1:${port} (--listen): the address is already in use; stop what holds it or choose another port (EADDRINUSE)`,
      );
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
  });

  it('prints the usage with --help and exits 0', async () => {
    const result = await runProxyToExit(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^usage: fhirmesh-proxy \(--routes FILE \| --controller HOST:PORT\)/);
    expect(result.stdout).toMatch(/FHIRMESH_LISTEN/);
    expect(result.stderr).toBe('');
  });
});

describe('environment variables', () => {
  it('takes the routes file from FHIRMESH_ROUTES and the listener from FHIRMESH_LISTEN', async () => {
    const proxy = await spawnProxy({ listen: null, env: { FHIRMESH_ROUTES: routes.file, FHIRMESH_LISTEN: '127.0.0.1:0' } });
    try {
      expect(proxy.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(proxy.url).not.toMatch(/:8080$/);
      expect(proxy.logs.find((l) => l.msg === 'route table loaded')).toMatchObject({ file: routes.file, routes: 1 });
      const res = await fetch(`${proxy.url}/Patient/p1`, { headers: { 'X-Destination': 'acme-payer' } });
      expect(res.status).toBe(200);
      expect(upstream.received.at(-1)?.url).toBe('/r4/Patient/p1');
    } finally {
      await proxy.kill();
    }
  });

  it('lets a flag win over its environment variable', async () => {
    const proxy = await spawnProxy({ routesFile: routes.file, env: { FHIRMESH_LISTEN: 'not-an-address', FHIRMESH_ROUTES: '/nonexistent/routes.yaml' } });
    try {
      expect(proxy.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await fetch(`${proxy.adminUrl}/readyz`)).status).toBe(200);
    } finally {
      await proxy.kill();
    }
  });
});
