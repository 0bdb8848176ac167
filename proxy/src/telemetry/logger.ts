// The proxy's logger is the JSON-lines logger of runtime/, shared with the controller; the proxy's
// modules import it from here. Callers pass only PHI-free fields (no query, body or Authorization).

export { createLogger, silentLogger, type Logger, type LogLevel } from '../../../runtime/index.ts';
