// JSON-lines logger of both processes: one object per line on stdout (stderr for warnings and
// errors). Callers pass only PHI-free fields; nothing here ever sees a URL query, a body or a header.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
  enabled(level: LogLevel): boolean;
}

export function createLogger(options: { level?: LogLevel; component: string; write?: (line: string, level: LogLevel) => void }): Logger {
  const threshold = ORDER[options.level ?? 'info'];
  const write =
    options.write ??
    ((line: string, level: LogLevel) => {
      (ORDER[level] >= ORDER.warn ? process.stderr : process.stdout).write(line + '\n');
    });
  return {
    enabled: (level) => ORDER[level] >= threshold,
    log(level, msg, fields) {
      if (ORDER[level] < threshold) return;
      write(JSON.stringify({ time: new Date().toISOString(), level, component: options.component, msg, ...fields }), level);
    },
  };
}

export function silentLogger(): Logger {
  return { log: () => undefined, enabled: () => false };
}
