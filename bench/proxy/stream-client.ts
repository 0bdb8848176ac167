// Child process: moves one large body through a contender, on the load core, so the runner can
// watch the contender's memory meanwhile. `up` POSTs N bytes (Content-Length, written with
// backpressure) and checks the upstream counted them all; `down` GETs N bytes and counts them.
// Prints one JSON line. Run by bench/proxy/run.ts.
import { DESTINATION, DOWNLOAD_PATH, UPLOAD_PATH } from './internal/fixtures.ts';

const { request } = process.getBuiltinModule('node:http');

const [portText, direction, bytesText] = process.argv.slice(2);
const port = Number(portText);
const bytes = Number(bytesText);
const CHUNK = Buffer.alloc(1024 * 1024, 'u');

function upload(): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: 'POST', path: UPLOAD_PATH, agent: false, headers: { 'x-destination': DESTINATION, 'content-type': 'application/octet-stream', 'content-length': String(bytes) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`upload answered ${res.statusCode}: ${text.slice(0, 300)}`));
          resolve((JSON.parse(text) as { receivedBytes: number }).receivedBytes);
        });
      },
    );
    req.on('error', reject);
    let left = bytes;
    const writeMore = (): void => {
      while (left > 0) {
        const chunk = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
        left -= chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', writeMore);
          return;
        }
      }
      req.end();
    };
    writeMore();
  });
}

function download(): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: `${DOWNLOAD_PATH}?bytes=${bytes}`, agent: false, headers: { 'x-destination': DESTINATION } }, (res) => {
      let received = 0;
      res.on('data', (chunk: Buffer) => (received += chunk.length));
      res.on('end', () => (res.statusCode === 200 ? resolve(received) : reject(new Error(`download answered ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const started = process.hrtime.bigint();
const moved = direction === 'up' ? await upload() : await download();
const ms = Number(process.hrtime.bigint() - started) / 1e6;
process.stdout.write(`${JSON.stringify({ direction, bytes: moved, ms, complete: moved === bytes })}\n`);
