// This machine is shared (2 cores): other work running during a window skews every figure.
// So each window records how much CPU the rest of the machine used, and a measurement waits
// for the machine to go quiet first.
import { readFileSync } from 'node:fs';

// USER_HZ: /proc/stat counts in 1/100 s on every Linux architecture Node supports.
const MICROS_PER_TICK = 10_000;

export interface MachineCpu {
  readonly busyMicros: number;
  readonly totalMicros: number;
}

export function readMachineCpu(): MachineCpu {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  // cpu user nice system idle iowait irq softirq steal guest guest_nice
  const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = ticks.reduce((sum, value) => sum + value, 0);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  return { busyMicros: (total - idle) * MICROS_PER_TICK, totalMicros: total * MICROS_PER_TICK };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** CPU the whole machine used over `ms`, in cores (0 to the number of CPUs). */
export async function machineBusyCores(ms: number): Promise<number> {
  const before = readMachineCpu();
  await sleep(ms);
  const after = readMachineCpu();
  return (after.busyMicros - before.busyMicros) / (ms * 1000);
}

/**
 * Waits until the machine, with nothing of ours running but the idle upstream, stays under
 * `maxBusyCores` for one second. Gives up after `maxWaitMs` and says how busy it still was.
 */
export async function waitForQuietMachine(maxBusyCores: number, maxWaitMs: number): Promise<{ waitedMs: number; busyCores: number }> {
  const started = Date.now();
  for (;;) {
    const busyCores = await machineBusyCores(1_000);
    const waitedMs = Date.now() - started;
    if (busyCores <= maxBusyCores || waitedMs >= maxWaitMs) return { waitedMs, busyCores };
  }
}
