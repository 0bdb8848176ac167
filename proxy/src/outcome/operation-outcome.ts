// Renders the proxy's own errors as FHIR OperationOutcome, JSON or XML as the originator asked,
// with diagnostics that name this intermediary so nobody mistakes them for the destination's.

import { PROXY_ERRORS, type ProxyErrorCode } from '../errors.ts';

export type OutcomeFormat = 'json' | 'xml';

export const ERROR_CODE_SYSTEM = 'https://fhirmesh.io/CodeSystem/proxy-error';

export interface RenderedOutcome {
  status: number;
  contentType: string;
  body: Buffer;
}

/**
 * Picks XML only when asked: `_format` wins over Accept (FHIR http.html#mime), and an Accept that
 * lists both takes the one that comes first. Anything else gets JSON, which every server must speak.
 */
export function chooseOutcomeFormat(formatParam: string | undefined, accept: string | undefined): OutcomeFormat {
  if (formatParam !== undefined) {
    const f = formatParam.toLowerCase();
    if (f === 'xml' || f.includes('xml')) return 'xml';
    return 'json';
  }
  if (accept === undefined) return 'json';
  const a = accept.toLowerCase();
  const xmlAt = a.search(/xml/);
  const jsonAt = a.search(/json/);
  if (xmlAt >= 0 && (jsonAt < 0 || xmlAt < jsonAt)) return 'xml';
  return 'json';
}

/** Reads `_format` from a raw query string without decoding anything else in it. */
export function formatParamOf(rawQuery: string): string | undefined {
  if (rawQuery === '') return undefined;
  for (const part of rawQuery.split('&')) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    if (key === '_format') return safeDecode(eq < 0 ? '' : part.slice(eq + 1));
  }
  return undefined;
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return value;
  }
}

export function renderOutcome(
  code: ProxyErrorCode,
  message: string,
  intermediaryId: string,
  format: OutcomeFormat,
): RenderedOutcome {
  const { status, issue } = PROXY_ERRORS[code];
  const diagnostics = `fhirmesh intermediary '${intermediaryId}': ${message}`;
  if (format === 'xml') {
    const xml =
      '<?xml version="1.0" encoding="UTF-8"?>' +
      '<OperationOutcome xmlns="http://hl7.org/fhir">' +
      '<issue>' +
      '<severity value="error"/>' +
      `<code value="${issue}"/>` +
      `<details><coding><system value="${ERROR_CODE_SYSTEM}"/><code value="${code}"/></coding>` +
      `<text value="${escapeXml(message)}"/></details>` +
      `<diagnostics value="${escapeXml(diagnostics)}"/>` +
      '</issue>' +
      '</OperationOutcome>';
    return { status, contentType: 'application/fhir+xml; charset=utf-8', body: Buffer.from(xml) };
  }
  const json = {
    resourceType: 'OperationOutcome',
    issue: [
      {
        severity: 'error',
        code: issue,
        details: { coding: [{ system: ERROR_CODE_SYSTEM, code }], text: message },
        diagnostics,
      },
    ],
  };
  return { status, contentType: 'application/fhir+json; charset=utf-8', body: Buffer.from(JSON.stringify(json)) };
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) =>
    c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : c === '"' ? '&quot;' : '&apos;',
  );
}
