#!/usr/bin/env node
// fhirmesh: the command line (demo, status, validate); reads the subcommand and hands over.

import { demoCommand } from './commands/demo.ts';
import { statusCommand } from './commands/status.ts';
import { validateCommand } from './commands/validate.ts';

const USAGE = `usage: fhirmesh <command>

  demo [--ephemeral-ports]   sample FHIR servers + proxy on loopback, with curl examples
  status --controller H:P    connected proxies and whether they run the current routes
  validate FILE...           check FhirRoute manifests (schema, rules, conflicts)
`;

const [command, ...rest] = process.argv.slice(2);
switch (command) {
  case 'demo':
    process.exitCode = await demoCommand(rest);
    break;
  case 'status':
    process.exitCode = await statusCommand(rest);
    break;
  case 'validate':
    process.exitCode = validateCommand(rest);
    break;
  case undefined:
  case '-h':
  case '--help':
  case 'help':
    process.stdout.write(USAGE);
    break;
  default:
    process.stderr.write(`fhirmesh: unknown command '${command}'\n${USAGE}`);
    process.exitCode = 2;
}
