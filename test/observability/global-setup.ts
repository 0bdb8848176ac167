// vitest globalSetup of the observability suite: makes sure Jaeger and Prometheus are there
// (build-tools.sh: cached build, apt-get when missing) and provides their paths to the test files.

import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';
import type { ObservabilityTools } from './support/tools.ts';

export default async function setup(project: TestProject): Promise<void> {
  const script = path.join(import.meta.dirname, 'build-tools.sh');
  const started = performance.now();
  const { stdout } = await promisify(execFile)('bash', [script], { maxBuffer: 16 * 1024 * 1024, timeout: 1_800_000 });
  const found = Object.fromEntries(
    stdout
      .split('\n')
      .map((line) => /^(FHIRMESH_[A-Z]+)=(.*)$/.exec(line))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1], m[2]]),
  );
  const tools: ObservabilityTools = {
    jaeger: required(found, 'FHIRMESH_JAEGER'),
    prometheus: required(found, 'FHIRMESH_PROMETHEUS'),
    promtool: required(found, 'FHIRMESH_PROMTOOL'),
  };
  project.provide('fhirmeshObservability', tools);
  console.log(`[observability] jaeger ${tools.jaeger}, prometheus ${tools.prometheus} ready in ${((performance.now() - started) / 1000).toFixed(1)}s`);
}

function required(found: Record<string, string | undefined>, name: string): string {
  const value = found[name];
  if (value === undefined || value === '') throw new Error(`build-tools.sh printed no ${name}= line`);
  return value;
}
