// Starts any contender by kind; direct is no process at all, the load goes to the upstream.
import { startFhirmesh } from './fhirmesh.ts';
import { startHaproxy } from './haproxy.ts';
import { startNginx } from './nginx.ts';
import { startNodeFloor } from './node-floor.ts';
import type { ContenderSpec, RunningContender, StartContext } from './contender.ts';

export function startContender(spec: ContenderSpec, context: StartContext): Promise<RunningContender> {
  switch (spec.kind) {
    case 'direct':
      return Promise.resolve({ spec, port: context.upstreamPort, readyMs: 0, pids: () => [], accessLogLines: () => null, stop: () => Promise.resolve() });
    case 'fhirmesh':
      return startFhirmesh(spec, context);
    case 'nginx':
      return startNginx(spec, context);
    case 'haproxy':
      return startHaproxy(spec, context);
    case 'node-http':
    case 'undici':
      return startNodeFloor(spec, context);
  }
}
