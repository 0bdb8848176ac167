// `_x-destination=<id>` (draft-only; off unless a route enables it): read and removed from the
// query, the rest of which is kept byte for byte.

import type { CompiledRoute } from '../../../../api/index.ts';
import { ProxyError } from '../../errors.ts';
import type { Carrier } from './carrier.ts';
import { lookupNamed } from './header-carrier.ts';

export const QUERY_PARAMETER = '_x-destination';

const queryEnabled = (route: CompiledRoute): boolean => route.addressing.queryParameter;

export const queryParameterCarrier: Carrier = {
  mode: 'query',
  enabled: queryEnabled,
  claim(input, table) {
    // With no route enabling it the parameter is an ordinary one, passed on untouched.
    if (!table.uses('query') || input.target.query === '') return undefined;
    const value = queryParameterValue(input.target.query);
    return value === undefined ? undefined : lookupNamed(table, value, QUERY_PARAMETER, queryEnabled);
  },
  strip(parts) {
    parts.query = parts.query
      .split('&')
      .filter((part) => keyOf(part) !== QUERY_PARAMETER)
      .join('&');
  },
};

function keyOf(part: string): string {
  const eq = part.indexOf('=');
  return eq < 0 ? part : part.slice(0, eq);
}

function queryParameterValue(query: string): string | undefined {
  const values = new Set<string>();
  for (const part of query.split('&')) {
    if (keyOf(part) !== QUERY_PARAMETER) continue;
    const eq = part.indexOf('=');
    values.add(eq < 0 ? '' : part.slice(eq + 1));
  }
  if (values.size > 1) {
    throw new ProxyError('FHIRMESH_METADATA_CONFLICT', `${QUERY_PARAMETER} is given ${values.size} times with different values; send it once`);
  }
  const [value] = values;
  return value;
}
