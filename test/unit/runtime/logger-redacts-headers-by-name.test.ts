// The logger of both processes writes header values only when their names are not credentials:
// authorization, proxy-authorization, cookie and set-cookie always, plus the names it is given.
import { describe, expect, it } from 'vitest';
import { createLogger, type LogLevel } from '../../../runtime/index.ts';

function capture(redactHeaders?: string[]): { lines: Record<string, unknown>[]; log: ReturnType<typeof createLogger> } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ component: 'test', write: (line: string, _level: LogLevel) => lines.push(JSON.parse(line) as Record<string, unknown>), ...(redactHeaders ? { redactHeaders } : {}) });
  return { lines, log };
}

describe('createLogger', () => {
  it('writes [REDACTED] for credential headers whatever their case, and other headers as they are', () => {
    const { lines, log } = capture();
    log.log('info', 'access', { headers: { Authorization: 'Bearer secret', cookie: 'a=b', 'Set-Cookie': 'c=d', 'proxy-authorization': 'Basic x', 'x-request-id': 'r1' } });
    expect(lines[0]?.headers).toEqual({ Authorization: '[REDACTED]', cookie: '[REDACTED]', 'Set-Cookie': '[REDACTED]', 'proxy-authorization': '[REDACTED]', 'x-request-id': 'r1' });
    expect(JSON.stringify(lines)).not.toContain('secret');
  });

  it('redacts the extra names it is given', () => {
    const { lines, log } = capture(['X-Api-Key']);
    log.log('info', 'access', { headers: { 'x-api-key': 'k', 'user-agent': 'ua' } });
    expect(lines[0]?.headers).toEqual({ 'x-api-key': '[REDACTED]', 'user-agent': 'ua' });
  });

  it('leaves lines without headers as they are', () => {
    const { lines, log } = capture();
    log.log('info', 'access', { destination: 'acme', status: 200 });
    expect(lines[0]).toMatchObject({ level: 'info', component: 'test', msg: 'access', destination: 'acme', status: 200 });
    expect(lines[0]).not.toHaveProperty('headers');
  });
});
