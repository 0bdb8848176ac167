// A contender is ready when its probe passes; if its process exits first, say so at once
// instead of polling until the timeout.
import type { ChildProcess } from 'node:child_process';
import { stopProcess } from '../processes.ts';

export async function readyOrExit(child: ChildProcess, name: string, ready: Promise<number>, whereToLook: () => string): Promise<number> {
  let onExit: ((code: number | null, signal: NodeJS.Signals | null) => void) | undefined;
  const exited = new Promise<never>((_resolve, reject) => {
    onExit = (code, signal) => reject(new Error(`${name} exited (code ${code}, signal ${signal}) before it was ready; ${whereToLook()}`));
    child.once('exit', onExit);
  });
  try {
    return await Promise.race([ready, exited]);
  } catch (error) {
    await stopProcess(child);
    throw error;
  } finally {
    if (onExit !== undefined) child.off('exit', onExit);
    exited.catch(() => undefined);
    ready.catch(() => undefined);
  }
}
