#!/usr/bin/env node
// fhirmesh-controller: reads flags, refuses bad ones with one line (exit 2), builds the mode they name
// and starts the controller in it (one line, exit 1, if it cannot), stops gracefully on SIGTERM/SIGINT.

import { exitStartFailure, flagsOrExit, stopOnSignals } from '../../runtime/index.ts';
import { CONTROLLER_USAGE, FlagError, parseControllerFlags } from './config/flags.ts';
import { createMode } from './create-mode.ts';
import { startController } from './start-controller.ts';

const config = flagsOrExit('fhirmesh-controller', CONTROLLER_USAGE, () => parseControllerFlags(process.argv.slice(2), process.env), FlagError);
const controller = await createMode(config)
  .then((mode) => startController(config, mode))
  .catch((err: unknown) => exitStartFailure('fhirmesh-controller', err));
const stop = stopOnSignals('fhirmesh-controller', 'controller', controller);
controller.ready.catch((err: unknown) => {
  process.stderr.write(`fhirmesh-controller: cannot read routes: ${err instanceof Error ? err.message : String(err)}\n`);
  stop(1);
});
