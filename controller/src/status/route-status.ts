// The desired status of one FhirRoute, Gateway API style: Accepted, ResolvedRefs and Programmed
// (every proxy in the route's scope runs this generation), plus proxy counts. Pure: no clock, no I/O.

import type { Condition, FhirRoute, FhirRouteStatus, RouteResult } from '../../../api/index.ts';

/** Proxies that run the same table in the same namespace, counted together. */
export interface ProxyGroup {
  namespace: string;
  /** Sorted; one per proxy. */
  nodeIds: readonly string[];
  /** namespace/name → generation of each route in the table these proxies ACKed; undefined before any ACK. */
  running: ReadonlyMap<string, number> | undefined;
  /** Their last answer, when it refused a table: its version, their message and the generations it held. */
  nack?: { version: string; message: string; routes: ReadonlyMap<string, number> };
}

export interface RouteStatusInput {
  route: FhirRoute;
  result: RouteResult;
  proxies: readonly ProxyGroup[];
  /** The status as last written, for lastTransitionTime. */
  previous: FhirRouteStatus | undefined;
  now: Date;
}

export function computeRouteStatus(input: RouteStatusInput): FhirRouteStatus {
  const { route, result, proxies } = input;
  const generation = result.generation;
  const scope = scopeOf(route);
  const inScope = proxies.filter((group) => scope.includes('*') || scope.includes(group.namespace));
  let total = 0;
  let programmed = 0;
  const refusing: ProxyGroup[] = [];
  for (const group of inScope) {
    total += group.nodeIds.length;
    if (group.running?.get(result.key) === generation) programmed += group.nodeIds.length;
    else if (group.nack?.routes.get(result.key) === generation) refusing.push(group);
  }

  const condition = (type: Condition['type'], ok: boolean, reason: string, message: string): Condition => ({
    type,
    status: ok ? 'True' : 'False',
    reason,
    message,
    observedGeneration: generation,
    lastTransitionTime: transitionTime(input, type, ok ? 'True' : 'False'),
  });

  let programmedCondition: Condition;
  if (!result.accepted) {
    programmedCondition = condition('Programmed', false, result.acceptedReason, `not sent to proxies: ${result.acceptedMessage}`);
  } else if (!result.resolvedRefs) {
    programmedCondition = condition('Programmed', false, result.resolvedRefsReason, `not sent to proxies: ${result.resolvedRefsMessage}`);
  } else if (total === 0) {
    programmedCondition = condition('Programmed', false, 'NoProxies', `no connected proxy serves a namespace this route is exported to (${scope.join(', ')})`);
  } else if (refusing.length > 0) {
    programmedCondition = condition('Programmed', false, 'Nacked', `${nackMessage(refusing)}; ${programmed} of ${total} proxies in scope run generation ${generation}`);
  } else if (programmed < total) {
    programmedCondition = condition('Programmed', false, 'Pending', `${programmed} of ${total} proxies in scope run generation ${generation}`);
  } else {
    programmedCondition = condition('Programmed', true, 'Programmed', `all ${total} proxies in scope run generation ${generation}`);
  }

  return {
    observedGeneration: generation,
    conditions: [
      condition('Accepted', result.accepted, result.acceptedReason, result.acceptedMessage),
      condition('ResolvedRefs', result.resolvedRefs, result.resolvedRefsReason, result.resolvedRefsMessage),
      programmedCondition,
    ],
    proxies: { total, programmed },
  };
}

/** Namespaces whose proxies see the route: exportTo, or its own namespace when absent. */
function scopeOf(route: FhirRoute): string[] {
  const exportTo: unknown = route.spec.exportTo;
  return Array.isArray(exportTo) ? (exportTo as string[]) : [route.metadata.namespace ?? 'default'];
}

/** Kept while the status value stays the same (Kubernetes' rule), so it says since when. */
function transitionTime(input: RouteStatusInput, type: Condition['type'], status: Condition['status']): string {
  const previous = input.previous?.conditions?.find((c) => c.type === type);
  if (previous?.status === status && previous.lastTransitionTime !== undefined) return previous.lastTransitionTime;
  // metav1.Time has whole seconds.
  return input.now.toISOString().replace(/\.\d+Z$/, 'Z');
}

function nackMessage(refusing: readonly ProxyGroup[]): string {
  const [first, ...others] = refusing;
  if (first === undefined) return '';
  const nack = first.nack;
  const more = others.reduce((sum, group) => sum + group.nodeIds.length, first.nodeIds.length - 1);
  const rest = more === 0 ? '' : ` (and ${more} more ${more === 1 ? 'proxy' : 'proxies'})`;
  return `proxy ${first.nodeIds[0] ?? '?'} (${first.namespace})${rest} refused version ${nack?.version ?? ''}: ${nack?.message ?? ''}`;
}
