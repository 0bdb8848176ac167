// Preloaded with --import into a process under test: on exit it writes the URL of every module the
// process loaded, one a line, to the file named by FHIRMESH_TEST_LOADED_MODULES_FILE.
import fs from 'node:fs';
import { registerHooks } from 'node:module';

const out = process.env['FHIRMESH_TEST_LOADED_MODULES_FILE'];
if (out !== undefined) {
  const loaded = new Set<string>();
  registerHooks({
    load(url, context, nextLoad) {
      loaded.add(url);
      return nextLoad(url, context);
    },
  });
  process.on('exit', () => fs.writeFileSync(out, [...loaded].join('\n')));
}
