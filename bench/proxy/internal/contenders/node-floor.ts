// Node's floor: the bare node:http and undici forwarders of bench/forwarding (header rules,
// streaming, keep-alive pool; no routing table, limits, metrics or logs), run here on the
// proxy's core. They forward every request to the one upstream, whatever X-Destination says.
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ForwarderArguments } from '../../../forwarding/internal/messages.ts';
import { PROXY_CORE, processTree, startPinned, stopProcess } from '../processes.ts';
import type { ContenderSpec, RunningContender, StartContext } from './contender.ts';

const FORWARDER = fileURLToPath(new URL('../../../forwarding/forwarder.ts', import.meta.url));
// The flags bench/forwarding gives its forwarders (its children sample RSS after a full GC).
const FORWARDER_NODE_FLAGS = ['--expose-gc', '--disable-warning=DEP0060'];

export async function startNodeFloor(spec: ContenderSpec, context: StartContext): Promise<RunningContender> {
  if (spec.kind !== 'node-http' && spec.kind !== 'undici') throw new Error(`${spec.name} is not a Node floor forwarder`);
  const forwarderArguments: ForwarderArguments = { engine: spec.kind, upstreamPort: context.upstreamPort, undiciApi: 'dispatch' };
  const startedAt = Date.now();
  const child: ChildProcess = startPinned(spec.name, process.execPath, [...FORWARDER_NODE_FLAGS, ...spec.args, FORWARDER, JSON.stringify(forwarderArguments)], {
    core: PROXY_CORE,
    env: { ...process.env, ...spec.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${spec.name} did not listen within ${context.readyTimeoutMs / 1000} s`)), context.readyTimeoutMs);
      child.on('message', (message: { type?: string; port?: number }) => {
        if (message.type !== 'listening' || message.port === undefined) return;
        clearTimeout(timer);
        resolve(message.port);
      });
      child.once('exit', (code) => reject(new Error(`${spec.name} exited (code ${code}) before listening; its stderr is above`)));
    });
  } catch (error) {
    await stopProcess(child);
    throw error;
  }
  const readyMs = Date.now() - startedAt;
  const pid = child.pid as number;
  return { spec, port, readyMs, pids: () => processTree(pid), accessLogLines: () => null, stop: () => stopProcess(child) };
}
