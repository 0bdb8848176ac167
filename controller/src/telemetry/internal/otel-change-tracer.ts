// ChangeTracer on OpenTelemetry: compile spans are roots (a change starts there); push and status
// spans are roots of their own that link to the compile span. Imported only when tracing is on.

import { type Link, type SpanContext, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { Tracing } from '../../../../runtime/index.ts';
import type { ChangeRef, ChangeTracer, OpenSpan } from '../change-tracer.ts';

interface OtelChangeRef extends ChangeRef {
  readonly spanContext: SpanContext;
}

const FAILED = new Set(['nack', 'refused', 'retry', 'conflict', 'error']);

function linksTo(cause: ChangeRef | undefined): Link[] {
  return cause === undefined ? [] : [{ context: (cause as OtelChangeRef).spanContext, attributes: { 'fhirmesh.link': 'caused-by-change' } }];
}

export function createOtelChangeTracer(tracing: Tracing): ChangeTracer {
  const tracer = tracing.tracer;
  const open = (name: string, kind: SpanKind, cause: ChangeRef | undefined, attributes: Record<string, string | number>): OpenSpan => {
    const span = tracer.startSpan(name, { kind, links: linksTo(cause), attributes });
    return {
      end(outcome, detail) {
        span.setAttribute('fhirmesh.outcome', outcome);
        for (const [key, value] of Object.entries(detail ?? {})) span.setAttribute(`fhirmesh.${key}`, value);
        if (FAILED.has(outcome)) span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
        span.end();
      },
    };
  };
  return {
    compile(facts, run, describe) {
      const span = tracer.startSpan('fhirmesh.compile', { kind: SpanKind.INTERNAL, attributes: { 'fhirmesh.sequence': facts.sequence, 'fhirmesh.trigger': facts.trigger } });
      try {
        const result = run();
        const described = describe(result);
        span.setAttributes({ 'fhirmesh.routes': described.routes, 'fhirmesh.table_version': described.version });
        const ref: OtelChangeRef = { changeRef: true, spanContext: span.spanContext() };
        return { result, ref: span.isRecording() ? ref : undefined };
      } catch (err) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
        throw err;
      } finally {
        span.end();
      }
    },
    push(cause, facts) {
      return open('fhirmesh.push', SpanKind.PRODUCER, cause, {
        'fhirmesh.node_id': facts.nodeId,
        'fhirmesh.namespace': facts.namespace,
        'fhirmesh.response_kind': facts.kind,
        'fhirmesh.table_version': facts.version,
        'fhirmesh.upserted': facts.upserted,
        'fhirmesh.removed': facts.removed,
      });
    },
    status(cause, operation, route) {
      return open(`fhirmesh.status.${operation}`, operation === 'write' ? SpanKind.CLIENT : SpanKind.INTERNAL, cause, route === undefined ? {} : { 'fhirmesh.route': route });
    },
    shutdown: () => tracing.shutdown(),
  };
}
