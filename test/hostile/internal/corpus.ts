// Loads the hostile-input corpus: YAML files of cases, each with the bytes to send and the exact
// outcome expected; `matrix` expands a case over named values, `{name}` marks where they go.

import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import type { SendStep } from '../../support/raw-http.ts';
import type { ScriptStep } from '../../support/scripted-destination.ts';

export interface ExpectedRequest {
  request: string;
  /** Exact body bytes (latin1); absent: empty. */
  body?: string;
}

export interface CorpusCase {
  file: string;
  name: string;
  side: 'client' | 'destination';
  send: SendStep[];
  /** Destination side: the scripted destination's answer to `/raw/{script}`. */
  script?: ScriptStep[];
  /** Name the script is registered under (unique per expanded case). */
  scriptName: string;
  expect: {
    statuses: number[];
    error?: string;
    closed?: boolean;
    /** Whether the last response arrived whole (false: cut mid-body). */
    complete?: boolean;
    /** Exactly the requests the recording destination must see (client side). */
    destination?: ExpectedRequest[];
    /** The last final response carries this many fields of this name. */
    headerCount?: { name: string; count: number };
    /** Destination side: wait this long before the follow-up, so late bytes land on an idle socket. */
    settleMs?: number;
    /** The first response must arrive within this many ms of sending. */
    maxMs?: number;
    /** Whether the destination saw the request (or part of it) is a race; only `destination` completed ones are checked. */
    destinationAny?: boolean;
    /** The destination saw a request begin and be cut off (its parser reports the early end). */
    destinationCut?: boolean;
    /** Bodies the originator must receive, by response index (latin1). */
    bodies?: (string | null)[];
  };
  /** The first request is a HEAD: its response has no body. */
  head: boolean;
  timeoutMs?: number;
}

/** A matrix value, or `{ name, value }` where `{key}` takes the value and `{keyName}` the name. */
type MatrixValue = string | number | { name: string; value: string };

interface RawCase {
  name: string;
  matrix?: Record<string, MatrixValue[]>;
  send?: string | SendStep[];
  script?: string | ScriptStep[];
  expect: CorpusCase['expect'] & { destination?: (string | ExpectedRequest)[] };
  timeoutMs?: number;
}

interface RawFile {
  side: 'client' | 'destination';
  cases: RawCase[];
}

export function loadCorpus(dir: string): CorpusCase[] {
  const out: CorpusCase[] = [];
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
    const doc = parse(fs.readFileSync(path.join(dir, file), 'utf8')) as RawFile;
    for (const raw of doc.cases) {
      for (const bindings of expand(raw.matrix ?? {})) {
        const scriptName = `s${out.length}`;
        const vars = { ...bindings, script: scriptName };
        const sub = <T>(value: T): T => substitute(value, vars);
        const send = sub(raw.send ?? 'GET /raw/{script} HTTP/1.1\r\nHost: gw.example\r\n\r\n');
        const steps: SendStep[] = typeof send === 'string' ? [{ write: send }] : send;
        const script = raw.script === undefined ? undefined : sub(raw.script);
        const expectation = sub(raw.expect);
        const first = steps.find((s): s is { write: string } => 'write' in s);
        out.push({
          file,
          // Control bytes in a name would garble the report: shown escaped, as in the YAML.
          name: JSON.stringify(sub(raw.name)).slice(1, -1),
          side: doc.side,
          send: steps,
          ...(script !== undefined ? { script: typeof script === 'string' ? [{ write: script }] : script } : {}),
          scriptName,
          expect: {
            ...expectation,
            ...(expectation.destination !== undefined
              ? { destination: expectation.destination.map((d) => (typeof d === 'string' ? { request: d } : d)) }
              : {}),
          },
          head: first?.write.startsWith('HEAD ') ?? false,
          ...(raw.timeoutMs !== undefined ? { timeoutMs: raw.timeoutMs } : {}),
        });
      }
    }
  }
  return out;
}

function expand(matrix: Record<string, MatrixValue[]>): Record<string, string>[] {
  let rows: Record<string, string>[] = [{}];
  for (const [key, values] of Object.entries(matrix)) {
    rows = rows.flatMap((row) =>
      values.map((v) => (typeof v === 'object' ? { ...row, [key]: v.value, [`${key}Name`]: v.name } : { ...row, [key]: String(v) })),
    );
  }
  return rows;
}

function substitute<T>(value: T, vars: Record<string, string>): T {
  if (typeof value === 'string') {
    // Twice: a matrix value may itself hold a placeholder (`{script}` inside `{req}`).
    const once = (text: string): string => text.replace(/\{([a-z][a-zA-Z0-9]*)\}/g, (all, key: string) => vars[key] ?? all);
    const replaced = once(once(value));
    // A whole-value placeholder for a number (`status: "{status}"`) becomes the number.
    return (/^\{[a-z][a-zA-Z0-9]*\}$/.test(value) && /^\d+$/.test(replaced) ? Number(replaced) : replaced) as T;
  }
  if (Array.isArray(value)) return value.map((v: unknown) => substitute(v, vars)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, vars)])) as T;
  }
  return value;
}
