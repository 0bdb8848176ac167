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

export function createLogger(options: LoggerOptions): Logger {
  const threshold = ORDER[options.level ?? 'info'];
  const redacted = new Set([...ALWAYS_REDACTED_HEADERS, ...(options.redactHeaders ?? []).map((name) => name.toLowerCase())]);
  const write =
    options.write ??
    ((line: string, level: LogLevel) => {
      (ORDER[level] >= ORDER.warn ? process.stderr : process.stdout).write(line + '\n');
    });
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
