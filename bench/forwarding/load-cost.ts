// Child process: what merely loading a forwarding library costs a sidecar that sits idle.
// Samples RSS (after GC) before and after importing one module. Run by run.ts, not directly.
import type { LoadableLibrary, LoadCostMessage } from './internal/messages.ts';
import { sampleProcess, sendToParent, serveParent, settle } from './internal/process-stats.ts';

async function importLibrary(library: LoadableLibrary): Promise<void> {
  switch (library) {
    case 'none':
      return;
    case 'node:http (import)':
      await import('node:http');
      return;
    case 'node:http (getBuiltinModule)':
      process.getBuiltinModule('node:http');
      return;
    case 'http-proxy':
      await import('http-proxy');
      return;
    case 'undici':
      await import('undici');
      return;
  }
}

// Node's list of the internal modules it has loaded: undocumented, but present since Node 0.x,
// and the only way to tell whether an import pulled in Node's bundled undici.
function loadedInternalModules(): readonly string[] {
  return (process as unknown as { moduleLoadList: readonly string[] }).moduleLoadList;
}

async function main(): Promise<void> {
  serveParent();
  const library = process.argv[2] as LoadableLibrary;
  // One dynamic import first, so that what the loader itself costs is not charged to a library.
  await import('node:path');
  await settle(200);
  const loadedBefore = new Set(loadedInternalModules());
  const before = sampleProcess(true);
  await importLibrary(library);
  await settle(200);
  const message: LoadCostMessage = {
    type: 'load-cost',
    before,
    after: sampleProcess(true),
    loadedBundledUndici: loadedInternalModules().some((name) => !loadedBefore.has(name) && name.includes('internal/deps/undici')),
  };
  sendToParent(message);
}

await main();
