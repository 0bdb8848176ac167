// How a child process describes itself: CPU time from process.cpuUsage() (microseconds) and
// memory from /proc/self/status, so that RSS includes everything the kernel charges.
import { readFileSync } from 'node:fs';
import type { ParentMessage, ProcessSample, StatsReply } from './messages.ts';

function statusKilobytes(status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  if (match?.[1] === undefined) throw new Error(`/proc/self/status has no ${field}; this benchmark needs Linux`);
  return Number(match[1]);
}

export function sampleProcess(collectGarbage: boolean): ProcessSample {
  if (collectGarbage) globalThis.gc?.();
  const cpu = process.cpuUsage();
  const status = readFileSync('/proc/self/status', 'utf8');
  const memory = process.memoryUsage();
  return {
    cpuUserMicros: cpu.user,
    cpuSystemMicros: cpu.system,
    rssBytes: statusKilobytes(status, 'VmRSS') * 1024,
    peakRssBytes: statusKilobytes(status, 'VmHWM') * 1024,
    heapUsedBytes: memory.heapUsed,
    heapTotalBytes: memory.heapTotal,
    externalBytes: memory.external,
  };
}

export function sendToParent(message: object): void {
  if (process.send === undefined) throw new Error('this file is a child of bench/forwarding/run.ts; run that instead');
  process.send(message);
}

/** Answers the parent's `stats` requests, and ends with the parent so no child outlives a run. */
export function serveParent(): void {
  process.once('disconnect', () => process.exit(0));
  process.on('message', (message: ParentMessage) => {
    if (message.type !== 'stats') return;
    const reply: StatsReply = { type: 'stats-reply', requestId: message.requestId, sample: sampleProcess(message.collectGarbage) };
    sendToParent(reply);
  });
}

/** Lets the heap settle after start-up (idle GC, lazy compilation) before the idle sample. */
export async function settle(ms: number): Promise<void> {
  globalThis.gc?.();
  await new Promise((resolve) => setTimeout(resolve, ms));
  globalThis.gc?.();
}
