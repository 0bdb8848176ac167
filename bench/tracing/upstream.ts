// Child of run.ts: the destination, a small FHIR read answered at once; prints its port as a JSON line.
import http from 'node:http';

const body = JSON.stringify({ resourceType: 'Patient', id: 'p1', name: [{ family: 'Chalmers', given: ['Peter', 'James'] }], gender: 'male' });
const server = http.createServer({ keepAliveTimeout: 60_000 }, (_req, res) => {
  res.writeHead(200, { 'Content-Type': 'application/fhir+json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: (server.address() as { port: number }).port }) + '\n');
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
