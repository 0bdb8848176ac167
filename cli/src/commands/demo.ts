// `fhirmesh demo`: starts the demo on loopback, prints ready-to-paste curl commands, and stops
// everything on Ctrl-C.

import { runDemo, toCurl } from '../demo/run-demo.ts';

export async function demoCommand(args: string[]): Promise<number> {
  const ephemeral = args.includes('--ephemeral-ports');
  let demo;
  try {
    demo = await runDemo({ ephemeral });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      process.stderr.write(`fhirmesh demo: a demo port is taken (${(err as Error).message}); stop what uses it, or run 'fhirmesh demo --ephemeral-ports'\n`);
      return 1;
    }
    throw err;
  }
  const lines = [
    '',
    'fhirmesh demo is running on loopback:',
    `  proxy        ${demo.proxy.url}   (routes: ${demo.routesFile})`,
    `  admin        ${demo.proxy.adminUrl}/debug/routes  /metrics  /readyz`,
    `  acme server  ${demo.acme.url}`,
    `  labs server  ${demo.labs.url}`,
    '',
    'Try (paste into another terminal):',
    '',
  ];
  for (const request of demo.requests) lines.push(`# ${request.title}`, toCurl(request), '');
  lines.push('Edit the routes file and save: the proxy reloads it (a bad edit is refused and logged). Ctrl-C stops everything.', '');
  process.stdout.write(lines.join('\n'));

  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  process.stdout.write('\nstopping the demo...\n');
  await demo.stop();
  return 0;
}
