// Binding a listener and saying why it could not be bound: the flag and address named, the errno
// translated into what to do. Used for every listener of both processes (HTTP and gRPC).

import type * as Http from 'node:http';

export interface BoundAddress {
  host: string;
  port: number;
}

/** Listens; resolves with the address bound (port 0 picks a free port). */
export function listen(server: Http.Server, host: string, port: number): Promise<BoundAddress> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      if (address === null || typeof address === 'string') reject(new Error('listener has no TCP address'));
      else resolve({ host: address.address, port: address.port });
    });
  });
}

/**
 * Names the address and the flag that set it: a bare EADDRINUSE does not say which listener. The
 * code comes from the errno, or from the message where there is none (gRPC's bind errors are text).
 */
export function listenFailure(flag: string, address: BoundAddress, err: unknown): Error {
  const text = err instanceof Error ? err.message : String(err);
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? /\b(EADDRINUSE|EADDRNOTAVAIL|EACCES|ENOTFOUND|EAI_AGAIN)\b/.exec(text)?.[1];
  const why =
    code === 'EADDRINUSE'
      ? 'the address is already in use; stop what holds it or choose another port'
      : code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? 'no such local address; use an address of this host, e.g. 0.0.0.0 or 127.0.0.1'
        : code === 'EACCES'
          ? 'permission denied; ports below 1024 need privileges, choose a higher port'
          : text;
  return new Error(`cannot listen on ${addressText(address)} (${flag}): ${why}${code === undefined ? '' : ` (${code})`}`, { cause: err });
}

/** An IPv6 literal in brackets, as URLs and host:port strings need it. */
export function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** host:port, with an IPv6 host in brackets. */
export function addressText(address: BoundAddress): string {
  return `${hostForUrl(address.host)}:${address.port}`;
}

/** Closes a listener and every connection still open on it (keep-alive ones included). */
export function closeServer(server: Http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise<void>((resolve) => server.close(() => resolve()));
}
