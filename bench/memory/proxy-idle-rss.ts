// Idle memory of one proxy process, the figure every sidecar pays: the sources run by Node 24's
// type stripping vs the compiled dist/ (npm run build), in routes-file and controller mode.
// Run: npm run build && node bench/memory/proxy-idle-rss.ts   (prints a table, writes bench/results/proxy-idle-rss.json)

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
const NODE = path.join(ROOT, 'node_modules/.bin/node');
const SAMPLES = Number(process.env.SAMPLES ?? 3);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-rss-'));
const routes = path.join(dir, 'routes.yaml');
fs.writeFileSync(routes, `apiVersion: fhirmesh.io/v1alpha1
kind: FhirRoute
metadata: { name: acme, namespace: default }
spec:
  destination: acme
  addressing: { header: true, pathSegment: true }
  backend: { url: http://127.0.0.1:9/fhir }
`);

interface Variant {
  name: string;
  main: string;
  args: string[];
}
const common = ['--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--no-access-log'];
const variants: Variant[] = [
  { name: 'sources (type stripping), routes file', main: 'proxy/src/main.ts', args: ['--routes', routes] },
  { name: 'dist (compiled), routes file', main: 'dist/proxy/src/main.js', args: ['--routes', routes] },
  { name: 'sources (type stripping), controller', main: 'proxy/src/main.ts', args: ['--controller', '127.0.0.1:9'] },
  { name: 'dist (compiled), controller', main: 'dist/proxy/src/main.js', args: ['--controller', '127.0.0.1:9'] },
];

function rssKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
}

async function measure(variant: Variant): Promise<{ rssMiB: number; hwmMiB: number }> {
  const child = spawn(NODE, [path.join(ROOT, variant.main), ...variant.args, ...common], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${variant.name} did not start`)), 20_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (chunk.includes('"proxy listening"')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  // Let start-up garbage settle, as a sidecar's steady state would.
  await new Promise((r) => setTimeout(r, 1_500));
  const pid = child.pid as number;
  const result = { rssMiB: rssKiB(pid, 'VmRSS') / 1024, hwmMiB: rssKiB(pid, 'VmHWM') / 1024 };
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  return result;
}

if (!fs.existsSync(path.join(ROOT, 'dist/proxy/src/main.js'))) {
  console.error('run `npm run build` first: the dist/ variants are measured from the compiled output');
  process.exit(2);
}
const rows: { variant: string; rssMiB: number; hwmMiB: number }[] = [];
for (const variant of variants) {
  const samples = [];
  for (let i = 0; i < SAMPLES; i++) samples.push(await measure(variant));
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  rows.push({ variant: variant.name, rssMiB: median(samples.map((s) => s.rssMiB)), hwmMiB: median(samples.map((s) => s.hwmMiB)) });
}
const base = rows[0]?.rssMiB ?? 1;
console.log(`proxy idle RSS, median of ${SAMPLES} starts (node ${process.version}, ${os.cpus().length} cores)\n`);
console.log('variant'.padEnd(42) + 'RSS MiB'.padStart(9) + 'peak MiB'.padStart(10) + '  vs sources/file');
for (const row of rows) {
  console.log(row.variant.padEnd(42) + row.rssMiB.toFixed(1).padStart(9) + row.hwmMiB.toFixed(1).padStart(10) + `  ${(row.rssMiB / base).toFixed(2)}x`);
}
fs.mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(ROOT, 'bench/results/proxy-idle-rss.json'), JSON.stringify({ node: process.version, samples: SAMPLES, rows }, null, 2) + '\n');
fs.rmSync(dir, { recursive: true, force: true });
