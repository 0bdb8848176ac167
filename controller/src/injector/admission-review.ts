// An AdmissionReview (admission.k8s.io/v1) in, the AdmissionReview answer out. Every pod is
// allowed: the webhook only ever adds the proxy, and a request it cannot read is admitted as is.

import type { InjectionConfig } from './injection-config.ts';
import { injectProxy, type InjectionResult } from './pod-injection.ts';

export interface AdmissionReviewResponse {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: {
    uid: string;
    allowed: true;
    patchType?: 'JSONPatch';
    /** base64 of the JSON patch. */
    patch?: string;
    warnings?: string[];
  };
}

export interface ReviewOutcome {
  review: AdmissionReviewResponse;
  /** What happened, for the log line and the metric; never the pod's content. */
  result: InjectionResult;
  /** namespace/name (or namespace/generateName* for a pod a controller is creating). */
  pod: string;
}

/**
 * @param body the parsed request body
 * @param caPem the controller's CA, read by the caller (the server re-reads it per review, so a
 *   rotated CA reaches new pods); undefined when unreadable or when the controller serves plaintext
 */
export function reviewAdmission(body: unknown, config: InjectionConfig, caPem: string | undefined): ReviewOutcome {
  const request = (body as { request?: { uid?: unknown; operation?: unknown; namespace?: unknown; object?: unknown; kind?: { kind?: unknown } } } | null)?.request;
  const uid = typeof request?.uid === 'string' ? request.uid : '';
  const answer = (result: InjectionResult, pod: string): ReviewOutcome => {
    const response: AdmissionReviewResponse['response'] = { uid, allowed: true };
    if (result.kind === 'injected') {
      response.patchType = 'JSONPatch';
      response.patch = Buffer.from(JSON.stringify(result.patch)).toString('base64');
      if (result.warnings.length > 0) response.warnings = result.warnings;
    } else if (result.kind === 'refused') {
      response.warnings = [result.warning];
    }
    return { review: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }, result, pod };
  };

  if (request === undefined || uid === '') return answer({ kind: 'refused', warning: 'fhirmesh: not injected: the body is not an AdmissionReview with a request uid' }, '');
  const object = request.object as { metadata?: { name?: unknown; generateName?: unknown; namespace?: unknown } } | undefined;
  const text = (value: unknown): string => (typeof value === 'string' ? value : '');
  const namespace = text(request.namespace) || text(object?.metadata?.namespace);
  const name = text(object?.metadata?.name) || `${text(object?.metadata?.generateName)}*`;
  const pod = `${namespace}/${name}`;
  if (request.kind?.kind !== 'Pod') return answer({ kind: 'refused', warning: `fhirmesh: not injected: the webhook handles Pods, not ${JSON.stringify(request.kind?.kind)}` }, pod);
  if (request.operation !== 'CREATE') return answer({ kind: 'unchanged', reason: `operation ${JSON.stringify(request.operation)}: the proxy is added on CREATE only` }, pod);
  return answer(injectProxy(request.object, config, caPem), pod);
}
