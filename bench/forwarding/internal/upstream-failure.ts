// What every engine does when the upstream fails: 502 while nothing was sent yet, otherwise
// abort the client connection (never a second status), as the proxy's request path does (docs/architecture.md).
import type { ServerResponse } from 'node:http';

const BAD_GATEWAY_BODY = JSON.stringify({
  resourceType: 'OperationOutcome',
  issue: [{ severity: 'error', code: 'transient', diagnostics: 'fhirmesh-bench: upstream failed' }],
});

export function failUpstream(res: ServerResponse, _error: Error): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  res.writeHead(502, { 'content-type': 'application/fhir+json', 'content-length': Buffer.byteLength(BAD_GATEWAY_BODY) });
  res.end(BAD_GATEWAY_BODY);
}
