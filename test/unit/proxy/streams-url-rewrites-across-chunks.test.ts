// The opt-in URL rewriter replaces the backend base in a byte stream however the chunks fall,
// and rewrites Location-style headers only on a whole-URL prefix.

import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { rewriteUrlPrefix, StreamingReplace } from '../../../proxy/src/forward/url-rewriter.ts';

const FROM = 'http://10.0.0.7:8080/fhir';
const TO = 'https://gw.example.org/acme';

async function rewrite(chunks: string[]): Promise<string> {
  return (await buffer(Readable.from(chunks.map((c) => Buffer.from(c))).pipe(new StreamingReplace(FROM, TO)))).toString();
}

describe('StreamingReplace', () => {
  const body = `{"entry":[{"fullUrl":"${FROM}/Patient/1"},{"fullUrl":"${FROM}/Patient/2"}],"link":[{"url":"${FROM}/Patient?page=2"}]}`;
  const expected = body.split(FROM).join(TO);

  it('rewrites every occurrence in one chunk', async () => {
    expect(await rewrite([body])).toBe(expected);
  });

  it('rewrites matches split at every possible chunk boundary', async () => {
    for (let cut = 1; cut < body.length; cut++) {
      expect(await rewrite([body.slice(0, cut), body.slice(cut)])).toBe(expected);
    }
  });

  it('rewrites a body arriving one byte at a time', async () => {
    expect(await rewrite([...body])).toBe(expected);
  });

  it('passes a body without matches unchanged, including a trailing partial prefix', async () => {
    const text = '{"a":"http://10.0.0.7:80"}';
    expect(await rewrite([text])).toBe(text);
  });
});

describe('rewriteUrlPrefix', () => {
  it('rewrites a whole-base prefix', () => {
    expect(rewriteUrlPrefix(`${FROM}/Patient/1/_history/2`, FROM, TO)).toBe(`${TO}/Patient/1/_history/2`);
  });
  it('leaves a longer path that merely starts with the same characters', () => {
    expect(rewriteUrlPrefix(`${FROM}2/Patient/1`, FROM, TO)).toBe(`${FROM}2/Patient/1`);
  });
});
