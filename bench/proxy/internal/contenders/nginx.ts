// nginx configured for the job fhirmesh does: route by X-Destination to an upstream group
// (unknown → 404), keep-alive to the upstream, both bodies streamed (no request or response
// buffering, no size limit), X-Destination removed, Via and Forwarded added. One worker.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DESTINATION, SEARCH_PATH } from '../fixtures.ts';
import { freePort, waitFor200 } from '../http-probe.ts';
import { PROXY_CORE, processTree, startPinned, stopProcess } from '../processes.ts';
import type { ContenderSpec, RunningContender, StartContext } from './contender.ts';
import { readyOrExit } from './ready.ts';

function nginxConfig(prefix: string, port: number, upstreamPort: number): string {
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `${user}daemon off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 65s;
  client_max_body_size 0;

  map $http_x_destination $destination_group {
    ${DESTINATION} destination_${DESTINATION};
    default "";
  }
  map $http_via $via_out {
    "" "1.1 nginx";
    default "$http_via, 1.1 nginx";
  }
  upstream destination_${DESTINATION} {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }

  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      if ($destination_group = "") { return 404; }
      proxy_pass http://$destination_group;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host 127.0.0.1:${upstreamPort};
      proxy_set_header X-Destination "";
      proxy_set_header Via $via_out;
      proxy_set_header Forwarded "for=$remote_addr;host=$http_host;proto=$scheme";
      proxy_request_buffering off;
      proxy_buffering off;
    }
  }
}
`;
}

export async function startNginx(spec: ContenderSpec, context: StartContext): Promise<RunningContender> {
  const prefix = join(context.workDir, 'nginx');
  mkdirSync(prefix, { recursive: true });
  const port = await freePort();
  const configPath = join(prefix, 'nginx.conf');
  writeFileSync(configPath, nginxConfig(prefix, port, context.upstreamPort));
  const startedAt = Date.now();
  const child = startPinned(spec.name, context.tools.nginx, ['-p', prefix, '-e', join(prefix, 'error.log'), '-c', configPath, ...spec.args], {
    core: PROXY_CORE,
    env: { ...process.env, ...spec.env },
  });
  const ready = waitFor200(port, SEARCH_PATH, { 'x-destination': DESTINATION }, startedAt, context.readyTimeoutMs, spec.name);
  const readyMs = await readyOrExit(child, spec.name, ready, () => `see ${prefix}/error.log and its stderr above`);
  const pid = child.pid as number;
  return { spec, port, readyMs, pids: () => processTree(pid), accessLogLines: () => null, stop: () => stopProcess(child) };
}
