// The intermediary's OperationOutcome: format chosen by _format then Accept, status and issue code
// from the error table, diagnostics naming this intermediary, XML escaped.

import { describe, expect, it } from 'vitest';
import { chooseOutcomeFormat, formatParamOf, renderOutcome } from '../../../proxy/src/outcome/operation-outcome.ts';

describe('chooseOutcomeFormat', () => {
  it.each([
    [undefined, undefined, 'json'],
    [undefined, 'application/fhir+xml', 'xml'],
    [undefined, 'application/fhir+json, application/fhir+xml;q=0.5', 'json'],
    [undefined, 'application/fhir+xml, application/fhir+json;q=0.5', 'xml'],
    ['xml', 'application/fhir+json', 'xml'],
    ['application/fhir+json', 'application/fhir+xml', 'json'],
    ['text/xml', undefined, 'xml'],
  ] as const)('_format=%s Accept=%s → %s', (format, accept, expected) => {
    expect(chooseOutcomeFormat(format, accept)).toBe(expected);
  });

  it('reads _format from a raw query', () => {
    expect(formatParamOf('a=1&_format=application%2Ffhir%2Bxml')).toBe('application/fhir+xml');
    expect(formatParamOf('a=1')).toBeUndefined();
  });
});

describe('renderOutcome', () => {
  it('renders JSON with the code, the issue type and the intermediary', () => {
    const out = renderOutcome('FHIRMESH_UPSTREAM_TIMEOUT', 'no response within 300 ms', 'gw-a', 'json');
    expect(out.status).toBe(504);
    expect(out.contentType).toBe('application/fhir+json; charset=utf-8');
    expect(JSON.parse(out.body.toString())).toEqual({
      resourceType: 'OperationOutcome',
      issue: [
        {
          severity: 'error',
          code: 'timeout',
          details: { coding: [{ system: 'https://fhirmesh.io/CodeSystem/proxy-error', code: 'FHIRMESH_UPSTREAM_TIMEOUT' }], text: 'no response within 300 ms' },
          diagnostics: "fhirmesh intermediary 'gw-a': no response within 300 ms",
        },
      ],
    });
  });

  it('renders escaped XML', () => {
    const out = renderOutcome('FHIRMESH_DESTINATION_UNKNOWN', 'no <destination> & "x"', 'gw-a', 'xml');
    expect(out.status).toBe(404);
    const xml = out.body.toString();
    expect(xml).toContain('<OperationOutcome xmlns="http://hl7.org/fhir">');
    expect(xml).toContain('<code value="not-found"/>');
    expect(xml).toContain('<text value="no &lt;destination&gt; &amp; &quot;x&quot;"/>');
  });
});
