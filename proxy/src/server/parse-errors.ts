// Maps what Node's HTTP parser refused (clientError) to this proxy's error codes, so a request
// that cannot even be parsed still gets a status that says why, with an OperationOutcome.

import type { ProxyLimits } from '../config/limits.ts';
import type { ProxyErrorCode } from '../errors.ts';

export interface ParseErrorOutcome {
  code: ProxyErrorCode;
  status: number;
  message: string;
}

const H2_PREFACE = 'PRI * HTTP/2.0';

/** undefined: the connection itself failed (reset, EPIPE): there is nobody to answer. */
export function parseErrorOutcome(err: NodeJS.ErrnoException & { rawPacket?: Buffer }, limits: ProxyLimits): ParseErrorOutcome | undefined {
  const code = err.code ?? '';
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return { code: 'FHIRMESH_CLIENT_TIMEOUT', status: 408, message: `the request head did not arrive within ${limits.headersTimeoutMs / 1000} s` };
  }
  if (!code.startsWith('HPE_')) return undefined;
  const raw = err.rawPacket?.toString('latin1') ?? '';
  if (code === 'HPE_HEADER_OVERFLOW') {
    // The parser does not say which part overflowed: no line end yet (or a very late one) means
    // the request line itself, i.e. the URL.
    const lineEnd = raw.indexOf('\n');
    if (lineEnd < 0 || lineEnd > limits.maxUrlBytes) {
      return { code: 'FHIRMESH_URI_TOO_LONG', status: 414, message: `the request URL is longer than this intermediary accepts (${limits.maxUrlBytes} bytes)` };
    }
    return { code: 'FHIRMESH_HEADERS_TOO_LARGE', status: 431, message: `the request line and headers are larger than this intermediary accepts (${limits.maxHeaderBytes} bytes)` };
  }
  // A well-formed version this proxy does not speak is 505; a malformed one is a bad request.
  if (raw.startsWith(H2_PREFACE) || (code === 'HPE_INVALID_VERSION' && /^[A-Z]+ \S+ HTTP\/\d\.\d\r?\n/.test(raw))) {
    return { code: 'FHIRMESH_VERSION_NOT_SUPPORTED', status: 505, message: 'only HTTP/1.1 (and 1.0) is served on this listener; HTTP/2 needs TLS with ALPN, which this listener does not offer' };
  }
  // The parser's code (HPE_INVALID_HEADER_TOKEN, ...) names the rule broken and carries no data.
  return { code: 'FHIRMESH_REQUEST_MALFORMED', status: 400, message: `the request is not valid HTTP/1.1 (${code}); this intermediary forwards only what it can parse one way` };
}
