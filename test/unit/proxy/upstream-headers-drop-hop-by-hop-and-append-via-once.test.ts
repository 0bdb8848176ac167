// Properties of the header list sent upstream (forward/headers.ts upstreamRequestHeaders), for any
// header list an originator can send: no hop-by-hop field and no field that Connection names is
// forwarded; every end-to-end field is kept, raw, once, in order; exactly one framing header, the
// one the framing asks for; exactly one Host and at most one X-Destination, the proxy's own; Via
// and Forwarded appended to exactly once.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HOP_BY_HOP, upstreamRequestHeaders, type UpstreamHeaderContext } from '../../../proxy/src/forward/headers.ts';
import type { BodyFraming } from '../../../proxy/src/server/request-framing.ts';

const END_TO_END = ['Accept', 'Authorization', 'Content-Type', 'Prefer', 'If-Match', 'Cookie', 'X-Request-Id', 'X-Forwarded-For', 'Accept-Encoding', 'X-Custom'];
const PER_HOP_OR_REPLACED = ['Host', 'X-Destination', 'Content-Length', 'Via', 'Forwarded'];
const NAMES = [...END_TO_END, ...PER_HOP_OR_REPLACED, ...[...HOP_BY_HOP].filter((n) => n !== 'connection')];

/** Any case, as senders spell them (`content-length`, `CONTENT-LENGTH`, `Content-Length`). */
const spelled = (name: string): fc.Arbitrary<string> =>
  fc.constantFrom(name, name.toLowerCase(), name.toUpperCase(), name.replace(/^./, (c) => c.toLowerCase()));
/** A Connection value naming fields and options, with the spacing senders use. */
const connectionValue = fc
  .tuple(fc.array(fc.oneof(fc.constantFrom(...NAMES).chain(spelled), fc.constantFrom('close', 'keep-alive', 'upgrade', '')), { minLength: 1, maxLength: 4 }), fc.constantFrom(',', ', ', ' , '))
  .map(([tokens, separator]) => tokens.join(separator));
const fieldArb = fc.oneof(
  { arbitrary: fc.tuple(fc.constantFrom(...NAMES).chain(spelled), fc.constantFrom('v', 'a, b', '1.1 gw-x', 'for=1.2.3.4', 'chunked', '0')), weight: 6 },
  { arbitrary: fc.tuple(spelled('Connection'), connectionValue), weight: 2 },
);
/**
 * Input fields get a unique marker in their value, so each can be followed through (or not);
 * Connection values stay as sent, since their tokens are what is being tested.
 */
const rawHeadersArb = fc
  .array(fieldArb, { maxLength: 14 })
  .map((fields) => fields.flatMap(([name, value], i) => [name, name.toLowerCase() === 'connection' ? value : `${value} ~${i}`]));

const framingArb: fc.Arbitrary<BodyFraming> = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  fc.nat({ max: 1 << 30 }).map((length) => ({ kind: 'length' as const, length })),
  fc.constant({ kind: 'chunked' as const }),
);
const contextArb: fc.Arbitrary<UpstreamHeaderContext> = fc.record({
  intermediaryId: fc.constantFrom('gw-a', 'gw.b_1'),
  upstreamHost: fc.constantFrom('fhir.internal', '127.0.0.1:8443', '[::1]:9'),
  nextHopDestination: fc.option(fc.constantFrom('acme-east', 'labs'), { nil: undefined }),
  clientAddress: fc.option(fc.constantFrom('127.0.0.1', '::1', '::ffff:10.0.0.1'), { nil: undefined }),
  originalHost: fc.option(fc.constantFrom('gw.example', 'gw.example:8080', '[::1]:80', ''), { nil: undefined }),
  protocol: fc.constantFrom('http' as const, 'https' as const),
  httpVersion: fc.constantFrom('1.1', '1.0'),
  framing: framingArb,
});

function pairs(flat: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string]);
  return out;
}
const named = (fields: [string, string][], name: string): [string, string][] => fields.filter(([n]) => n.toLowerCase() === name);

describe('upstreamRequestHeaders, for any originator header list', () => {
  it('forwards no hop-by-hop or Connection-named field, and every end-to-end field raw, once, in order', () => {
    fc.assert(
      fc.property(rawHeadersArb, contextArb, (raw, ctx) => {
        const input = pairs(raw);
        const output = pairs(upstreamRequestHeaders(raw, ctx));
        const listed = new Set(named(input, 'connection').flatMap(([, v]) => v.split(',').map((t) => t.trim().toLowerCase())));
        expect(named(output, 'connection')).toEqual([]);
        const carried = output.filter(([, value]) => / ~\d+$/.test(value));
        // Via and Forwarded values are merged into one field: those are checked below.
        const carriedWhole = carried.filter(([n]) => !['via', 'forwarded'].includes(n.toLowerCase()));
        for (const [name] of carriedWhole) {
          const lower = name.toLowerCase();
          expect(HOP_BY_HOP.has(lower), `${name} forwarded`).toBe(false);
          expect(listed.has(lower), `${name} is named by Connection yet forwarded`).toBe(false);
          expect(PER_HOP_OR_REPLACED.map((n) => n.toLowerCase())).not.toContain(lower);
        }
        const endToEnd = input.filter(([n]) => {
          const lower = n.toLowerCase();
          return !HOP_BY_HOP.has(lower) && !listed.has(lower) && !PER_HOP_OR_REPLACED.some((p) => p.toLowerCase() === lower);
        });
        expect(carriedWhole).toEqual(endToEnd);
      }),
      { numRuns: 3_000 },
    );
  });

  it('sends exactly one framing header, the one the framing asks for, whatever the originator sent', () => {
    fc.assert(
      fc.property(rawHeadersArb, contextArb, (raw, ctx) => {
        const output = pairs(upstreamRequestHeaders(raw, ctx));
        const lengths = named(output, 'content-length');
        const codings = named(output, 'transfer-encoding');
        switch (ctx.framing.kind) {
          case 'none':
            expect([lengths, codings]).toEqual([[], []]);
            break;
          case 'length':
            expect([lengths.map(([, v]) => v), codings]).toEqual([[String(ctx.framing.length)], []]);
            break;
          case 'chunked':
            expect([lengths, codings.map(([, v]) => v)]).toEqual([[], ['chunked']]);
            break;
        }
      }),
      { numRuns: 3_000 },
    );
  });

  it('sends its own Host and X-Destination once, and appends to Via and Forwarded exactly once', () => {
    fc.assert(
      fc.property(rawHeadersArb, contextArb, (raw, ctx) => {
        const input = pairs(raw);
        const output = pairs(upstreamRequestHeaders(raw, ctx));
        const listed = new Set(named(input, 'connection').flatMap(([, v]) => v.split(',').map((t) => t.trim().toLowerCase())));
        expect(named(output, 'host').map(([, v]) => v)).toEqual([ctx.upstreamHost]);
        expect(named(output, 'x-destination').map(([, v]) => v)).toEqual(ctx.nextHopDestination === undefined ? [] : [ctx.nextHopDestination]);

        const earlier = (name: string): string[] => (listed.has(name) ? [] : named(input, name).map(([, v]) => v));
        const via = named(output, 'via');
        expect(via).toHaveLength(1);
        expect((via[0] as [string, string])[1]).toBe([...earlier('via'), `${ctx.httpVersion} ${ctx.intermediaryId}`].join(', '));

        const forwarded = named(output, 'forwarded');
        expect(forwarded).toHaveLength(1);
        const value = (forwarded[0] as [string, string])[1];
        const prefix = earlier('forwarded').join(', ');
        expect(value.startsWith(prefix)).toBe(true);
        const ours = value.slice(prefix === '' ? 0 : prefix.length + 2);
        expect(ours).toMatch(new RegExp(`^by=_${ctx.intermediaryId.replace(/\./g, '\\.')}(;for=[^;,]+)?(;host=[^;,]+)?;proto=${ctx.protocol}$`));
      }),
      { numRuns: 3_000 },
    );
  });
});
