// The life of a binary, the same for both: bad flags → one line on stderr, exit 2; a failed start →
// one line, exit 1; SIGTERM/SIGINT → a "shutting down" log line, a graceful stop, exit 0 (1 if it fails).

import { createLogger } from './logger.ts';

/**
 * The parsed flags, or the process ends: --help prints `usage` (exit 0); a refused flag prints one
 * line (exit 2), as the usage text would bury it in a container log.
 */
export function flagsOrExit<T>(binary: string, usage: string, parse: () => T | 'help', flagError: new (...args: never[]) => Error): T {
  let parsed: T | 'help';
  try {
    parsed = parse();
  } catch (err) {
    const known = err instanceof flagError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true;
    const message = known ? (err as Error).message : String(err);
    // node:util parseArgs writes some errors over several lines.
    process.stderr.write(`${binary}: ${message.replace(/\s*\n\s*/g, ' ')} (${binary} --help lists every flag)\n`);
    process.exit(2);
  }
  if (parsed === 'help') {
    process.stdout.write(usage);
    process.exit(0);
  }
  return parsed;
}

/** Ends the process with one line saying why it could not start. */
export function exitStartFailure(binary: string, err: unknown, exitCode = 1): never {
  process.stderr.write(`${binary}: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(exitCode);
}

export interface Stoppable {
  shutdown(): Promise<unknown>;
}

/**
 * Stops `running` gracefully on SIGTERM and SIGINT, then exits 0. Returns the same stop for other
 * reasons to end, with their exit code. A second stop while one is under way does nothing.
 */
export function stopOnSignals(binary: string, component: string, running: Stoppable): (exitCode: number) => void {
  // Always at info: the line that says why the process ends is written whatever --log-level says.
  const logger = createLogger({ component });
  let stopping = false;
  const stop = (exitCode: number, signal?: string): void => {
    if (stopping) return;
    stopping = true;
    if (signal !== undefined) logger.log('info', 'shutting down', { signal });
    running.shutdown().then(
      () => process.exit(exitCode),
      (err: unknown) => {
        process.stderr.write(`${binary}: shutdown failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop(0, 'SIGTERM'));
  process.on('SIGINT', () => stop(0, 'SIGINT'));
  return (exitCode) => stop(exitCode);
}
