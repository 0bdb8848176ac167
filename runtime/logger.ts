// JSON-lines logger of both processes: one object per line on stdout (stderr for warnings and
// errors). Callers pass only PHI-free fields; a `headers` field is redacted here by header name.
// Kept over pino: cheaper per access line on the proxy's hot path (bench/logger, docs/performance.md).

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Header values never written, whatever a caller or --log-headers asks for: credentials and sessions. */
export const ALWAYS_REDACTED_HEADERS: readonly string[] = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie'];
export const REDACTED = '[REDACTED]';

export interface Logger {
  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
  enabled(level: LogLevel): boolean;
}

export interface LoggerOptions {
  level?: LogLevel;
  component: string;
  write?: (line: string, level: LogLevel) => void;
  /** More header names (any case) whose values a `headers` field shows as [REDACTED]. */
  redactHeaders?: readonly string[];
}

/**
 * Lines for stdout are gathered and written once per turn of the event loop (or at 64 KiB), so an
 * access line costs a string append on the request's path, not a write system call; warnings and
 * errors go to stderr at once, after what was gathered, so the order of lines stays as logged.
 */
class BatchedStdout {
  #pending = '';
  #scheduled = false;
  /** Lines dropped because stdout's reader fell this far behind (reported once per stretch). */
  #dropped = 0;
  readonly #flush = (): void => {
    this.#scheduled = false;
    this.flush();
  };

  constructor() {
    // What is gathered is not lost at exit (stdout to a file or pipe is written synchronously).
    process.once('exit', () => this.flush());
  }

  write(line: string): void {
    this.#pending += line + '\n';
    if (this.#pending.length >= 65_536) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  flush(): void {
    if (this.#pending === '') return;
    const text = this.#pending;
    this.#pending = '';
    // A reader that stops taking stdout must not grow the proxy without bound: past 8 MiB queued,
    // access lines are dropped (and counted on stderr) until it catches up.
    if (process.stdout.writableLength > MAX_QUEUED_BYTES) {
      this.#dropped += countLines(text);
      return;
    }
    if (this.#dropped > 0) {
      process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'warn', msg: 'log lines dropped: stdout was not being read', dropped: this.#dropped }) + '\n');
      this.#dropped = 0;
    }
    process.stdout.write(text);
  }
}

const MAX_QUEUED_BYTES = 8 * 1024 * 1024;

function countLines(text: string): number {
  let lines = 0;
  for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) lines++;
  return lines;
}

let stdout: BatchedStdout | undefined;

function defaultWrite(line: string, level: LogLevel): void {
  stdout ??= new BatchedStdout();
  if (ORDER[level] >= ORDER.warn) {
    stdout.flush();
    process.stderr.write(line + '\n');
  } else {
    stdout.write(line);
  }
}

export function createLogger(options: LoggerOptions): Logger {
  const threshold = ORDER[options.level ?? 'info'];
  const redacted = new Set([...ALWAYS_REDACTED_HEADERS, ...(options.redactHeaders ?? []).map((name) => name.toLowerCase())]);
  const write = options.write ?? defaultWrite;
  return {
    enabled: (level) => ORDER[level] >= threshold,
    log(level, msg, fields) {
      if (ORDER[level] < threshold) return;
      const headers = fields?.headers;
      const safe = headers !== null && typeof headers === 'object' ? { ...fields, headers: redactHeaders(headers as Record<string, unknown>, redacted) } : fields;
      write(JSON.stringify({ time: new Date().toISOString(), level, component: options.component, msg, ...safe }), level);
    },
  };
}

function redactHeaders(headers: Record<string, unknown>, redacted: ReadonlySet<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers)) out[name] = redacted.has(name.toLowerCase()) ? REDACTED : value;
  return out;
}

export function silentLogger(): Logger {
  return { log: () => undefined, enabled: () => false };
}
