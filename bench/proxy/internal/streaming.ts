// 1 GiB through a freshly started contender, up (a POST the upstream counts) and then down (a
// GET the client counts), while the runner reads the contender's RSS every 50 ms. A forwarder
// that streams with backpressure stays flat; one that buffers grows by the body.
import { fileURLToPath } from 'node:url';
import type { ContenderSpec } from './contenders/contender.ts';
import { startContender } from './contenders/start.ts';
import { runOnLoadCore } from './load.ts';
import { startContext } from './measure-contender.ts';
import type { MeasureContext } from './measure-contender.ts';
import { treeCpuMicros, treeMemory } from './processes.ts';

const STREAM_CLIENT = fileURLToPath(new URL('../stream-client.ts', import.meta.url));
const SAMPLE_EVERY_MS = 50;

export interface StreamDirection {
  readonly bytes: number;
  readonly complete: boolean;
  readonly ms: number;
  readonly mebibytesPerSecond: number;
  /** Highest RSS seen while this body moved, minus RSS before the first one. */
  readonly rssGrowthBytes: number;
  readonly contenderCpuMicros: number;
}

export interface StreamingRun {
  readonly contender: string;
  readonly idleRssBytes: number;
  readonly up: StreamDirection;
  readonly down: StreamDirection;
}

export async function measureStreaming(spec: ContenderSpec, context: MeasureContext): Promise<StreamingRun> {
  const running = await startContender(spec, startContext(context, `stream-${spec.name}`, context.routes));
  try {
    await new Promise((resolve) => setTimeout(resolve, context.options.settleMs));
    const pids = running.pids();
    const before = treeMemory(pids);
    let highWater = before.peakRssBytes;

    const move = async (direction: 'up' | 'down'): Promise<StreamDirection> => {
      let sampledMax = 0;
      const sampler = setInterval(() => {
        sampledMax = Math.max(sampledMax, treeMemory(pids).rssBytes);
      }, SAMPLE_EVERY_MS);
      const cpuBefore = treeCpuMicros(pids);
      let output: string;
      try {
        output = await runOnLoadCore(process.execPath, [STREAM_CLIENT, String(running.port), direction, String(context.options.streamBytes)], `stream-client ${direction}`);
      } finally {
        clearInterval(sampler);
      }
      const contenderCpuMicros = treeCpuMicros(pids) - cpuBefore;
      const after = treeMemory(pids);
      // VmHWM above every earlier high-water mark was set by this body: exact. Otherwise the
      // peak was below an earlier one (start-up), and the 50 ms samples are the best there is.
      const peak = after.peakRssBytes > highWater ? after.peakRssBytes : Math.max(sampledMax, after.rssBytes);
      highWater = Math.max(highWater, after.peakRssBytes);
      const result = JSON.parse(output.trim().split('\n').pop() ?? '{}') as { bytes: number; ms: number; complete: boolean };
      return {
        bytes: result.bytes,
        complete: result.complete,
        ms: result.ms,
        mebibytesPerSecond: result.bytes / 1024 / 1024 / (result.ms / 1000),
        rssGrowthBytes: Math.max(0, peak - before.rssBytes),
        contenderCpuMicros,
      };
    };
    const up = await move('up');
    const down = await move('down');
    return { contender: spec.name, idleRssBytes: before.rssBytes, up, down };
  } finally {
    await running.stop();
  }
}
