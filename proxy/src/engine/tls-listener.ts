// The originator-facing listener over TLS (`--tls-cert`/`--tls-key`), for the inbound gateway that
// holds the destination's public certificate: HTTP/1.1 by ALPN, TLS 1.2 at least, the pair reloaded
// when its files change (cert-manager rotation) for every new connection.

import type net from 'node:net';
import type * as Tls from 'node:tls';
import { checkKeyPair, readKeyPair, watchKeyPair, type Logger, type TlsFiles } from '../../../runtime/index.ts';

/** A handshake that has not finished by then is dropped (slow or silent clients). */
const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface TlsListener {
  create(listener: (socket: net.Socket) => void): net.Server;
  close(): void;
}

/** Reads and checks the pair now: a pair that cannot serve refuses the start with the reason. */
export function tlsListener(files: TlsFiles & { reloadIntervalMs?: number }, logger: Logger): TlsListener {
  const tls: typeof Tls = process.getBuiltinModule('node:tls');
  const pair = readKeyPair(files);
  checkKeyPair(pair, files);
  let watch: { close(): void } | undefined;
  return {
    create(listener) {
      const server = tls.createServer(
        {
          cert: pair.cert,
          key: pair.key,
          ALPNProtocols: ['http/1.1'],
          minVersion: 'TLSv1.2',
          handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
          // An originator's FIN mid-message is still answered (400) before the close.
          allowHalfOpen: true,
        },
        listener,
      );
      // A handshake that fails (wrong protocol, no common cipher) is the client's; nothing to answer.
      server.on('tlsClientError', (_err: Error, socket: Tls.TLSSocket) => socket.destroy());
      watch = watchKeyPair(files, pair, {
        logger,
        what: 'listener',
        ...(files.reloadIntervalMs === undefined ? {} : { intervalMs: files.reloadIntervalMs }),
        apply: (next) => server.setSecureContext({ cert: next.cert, key: next.key }),
      });
      return server;
    },
    close() {
      watch?.close();
    },
  };
}
