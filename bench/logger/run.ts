// Compares the JSON-lines logger of runtime/ with pino (sync and buffered async destinations) on the
// proxy's access line: CPU µs per line in a child whose stdout is a pipe, median of several runs.
// Usage: node bench/logger/run.ts [--lines N] [--runs N]; writes bench/results/logger.json.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { lines: { type: 'string', default: '200000' }, runs: { type: 'string', default: '5' } } });
const lines = Number(values.lines);
const runs = Number(values.runs);
const IMPLS = ['runtime', 'pino-sync', 'pino-async', 'pino-defaults'];

interface Sample {
  impl: string;
  lines: number;
  cpuMicros: number;
  wallMs: number;
  rssBytes: number;
}

function runOnce(impl: string): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, 'writer.ts'), impl, String(lines)], { stdio: ['ignore', 'pipe', 'inherit', 'pipe'] });
    let bytes = 0;
    child.stdout?.on('data', (chunk: Buffer) => (bytes += chunk.length));
    let report = '';
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (chunk: Buffer) => (report += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${impl} exited ${code}`));
      else if (bytes === 0) reject(new Error(`${impl} wrote nothing`));
      else resolve(JSON.parse(report) as Sample);
    });
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const samples = new Map<string, Sample[]>(IMPLS.map((impl) => [impl, []]));
for (let r = 0; r < runs; r++) {
  // Interleaved, so machine load drifts over all of them alike.
  for (const impl of IMPLS) samples.get(impl)?.push(await runOnce(impl));
}
const table: Record<string, { cpuMicrosPerLine: number; wallMicrosPerLine: number; rssMiB: number }> = {};
console.log(`access line, ${lines} lines per run, 16 per turn of the event loop, median of ${runs} runs, Node ${process.version}`);
console.log('| logger | CPU µs/line | wall µs/line | RSS MiB at the end |');
console.log('| --- | --- | --- | --- |');
for (const impl of IMPLS) {
  const of = samples.get(impl) ?? [];
  const row = {
    cpuMicrosPerLine: Math.round((median(of.map((s) => s.cpuMicros)) / lines) * 100) / 100,
    wallMicrosPerLine: Math.round((median(of.map((s) => s.wallMs * 1000)) / lines) * 100) / 100,
    rssMiB: Math.round((median(of.map((s) => s.rssBytes)) / 1048576) * 10) / 10,
  };
  table[impl] = row;
  console.log(`| ${impl} | ${row.cpuMicrosPerLine} | ${row.wallMicrosPerLine} | ${row.rssMiB} |`);
}
const out = path.join(here, '../results/logger.json');
fs.writeFileSync(out, JSON.stringify({ node: process.version, lines, runs, results: table }, null, 2) + '\n');
console.log(`wrote ${path.relative(process.cwd(), out)}`);
