// Each golden/<case>.review.json is an AdmissionReview as the apiserver sends it; the answer must be
// exactly golden/<case>.answer.json (the patch decoded from base64 for reading). After the patch is
// applied, a second review of the same pod must change nothing (idempotent).
// UPDATE_GOLDEN=1 rewrites the answers from the code: review the diff before committing it.

import fs from 'node:fs';
import path from 'node:path';
import { expect, test } from 'vitest';
import { checkInjectionConfig, reviewAdmission, type InjectionConfig, type JsonPatchOperation } from '../../../../controller/src/injector/index.ts';

const GOLDEN = path.join(import.meta.dirname, 'golden');
const CA_PEM = '-----BEGIN CERTIFICATE-----\nMIIBfixtureCA\n-----END CERTIFICATE-----\n';
const tlsConfig = checkInjectionConfig(JSON.parse(fs.readFileSync(path.join(GOLDEN, 'config.json'), 'utf8')), 'golden/config.json');
const { controllerTls: _, ...plaintextConfig } = tlsConfig;
const configs: Record<string, { config: InjectionConfig; caPem: string | undefined }> = {
  tls: { config: tlsConfig, caPem: CA_PEM },
  plaintext: { config: plaintextConfig, caPem: undefined },
};

interface GoldenCase {
  config?: keyof typeof configs;
  review: { request: { object: unknown } };
}

const cases = fs
  .readdirSync(GOLDEN)
  .filter((file) => file.endsWith('.review.json'))
  .map((file) => file.slice(0, -'.review.json'.length))
  .sort();

test('there are golden cases', () => {
  expect(cases.length).toBeGreaterThanOrEqual(10);
});

for (const name of cases) {
  test(name, () => {
    const input = JSON.parse(fs.readFileSync(path.join(GOLDEN, `${name}.review.json`), 'utf8')) as GoldenCase;
    const { config, caPem } = configs[input.config ?? 'tls'] ?? configs.tls!;
    const { review } = reviewAdmission(input.review, config, caPem);
    const { patch, ...response } = review.response;
    const decoded = patch === undefined ? undefined : (JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as JsonPatchOperation[]);
    const answer = { apiVersion: review.apiVersion, kind: review.kind, response: { ...response, ...(decoded === undefined ? {} : { patch: decoded }) } };

    const answerFile = path.join(GOLDEN, `${name}.answer.json`);
    if (process.env.UPDATE_GOLDEN === '1') fs.writeFileSync(answerFile, JSON.stringify(answer, null, 2) + '\n');
    expect(answer).toEqual(JSON.parse(fs.readFileSync(answerFile, 'utf8')));

    if (decoded !== undefined) {
      const injected = applyPatch(input.review.request.object, decoded);
      const again = reviewAdmission({ ...input.review, request: { ...input.review.request, object: injected } }, config, caPem).review.response;
      expect(again).toEqual({ uid: review.response.uid, allowed: true });
    }
  });
}

/** RFC 6902 `add` (the only op the injector emits), on a copy; a path that does not resolve throws. */
function applyPatch(document: unknown, patch: JsonPatchOperation[]): unknown {
  const root = structuredClone(document) as Record<string, unknown>;
  for (const { op, path: pointer, value } of patch) {
    expect(op).toBe('add');
    const tokens = pointer
      .split('/')
      .slice(1)
      .map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'));
    const last = tokens.pop()!;
    let parent: unknown = root;
    for (const token of tokens) {
      parent = (parent as Record<string, unknown>)[token];
      if (parent === undefined) throw new Error(`patch path ${pointer} does not resolve at ${token}`);
    }
    if (Array.isArray(parent)) {
      if (last === '-') parent.push(value);
      else parent.splice(Number(last), 0, value);
    } else {
      const target = parent as Record<string, unknown>;
      if (target[last] !== undefined) throw new Error(`patch adds ${pointer}, which exists: an add would replace it`);
      target[last] = value;
    }
  }
  return root;
}
