// The status of one FhirRoute, Gateway API style: Accepted, ResolvedRefs and Programmed (every
// proxy in the route's scope runs this generation), plus proxy counts. Pure: no clock, no I/O.

import { exportScopeOf, isExportedTo, type Condition, type FhirRoute, type FhirRouteStatus, type RouteResult } from '../../../../api/index.ts';
import type { ProxyGroup } from './proxy-groups.ts';

export interface RouteStatusInput {
  route: FhirRoute;
  result: RouteResult;
  proxies: readonly ProxyGroup[];
  /** The status as last known (stored, or computed before), for lastTransitionTime. */
  previous: FhirRouteStatus | undefined;
  now: Date;
}

export function computeRouteStatus(input: RouteStatusInput): FhirRouteStatus {
  const { route, result, proxies } = input;
  const generation = result.generation;
  const scope = { exportTo: exportScopeOf(route) };
  const inScope = proxies.filter((group) => isExportedTo(scope, group.namespace));
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
    reason: withinLimit(reason, MAX_REASON),
    message: withinLimit(message, MAX_MESSAGE),
    observedGeneration: generation,
    lastTransitionTime: transitionTime(input, type, ok ? 'True' : 'False'),
  });

  let programmedCondition: Condition;
  if (!result.accepted) {
    programmedCondition = condition('Programmed', false, result.acceptedReason, `not sent to proxies: ${result.acceptedMessage}`);
  } else if (!result.resolvedRefs) {
    programmedCondition = condition('Programmed', false, result.resolvedRefsReason, `not sent to proxies: ${result.resolvedRefsMessage}`);
  } else if (total === 0) {
    programmedCondition = condition('Programmed', false, 'NoProxies', `no connected proxy serves a namespace this route is exported to (${scope.exportTo.join(', ')})`);
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

/**
 * The CRD's maxLength of a condition's reason and message: a proxy's NACK detail quoted in a message
 * is not ours to bound, and one character too many would make the apiserver refuse the whole status.
 */
const MAX_REASON = 1024;
const MAX_MESSAGE = 32768;

function withinLimit(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
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
