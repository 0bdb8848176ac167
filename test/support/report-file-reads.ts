// Preloaded with --import into a process under test: each time the process reads the file named by
// FHIRMESH_TEST_REPORT_READS (fs.readFileSync, as the routes-file loader does), it logs a JSON line
// {"msg":"test: file read","file":…,"sha256":…} on stdout. A test then waits for the poll or the
// watcher to have read a given content, instead of sleeping for as long as a poll might take.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const watched = process.env['FHIRMESH_TEST_REPORT_READS'];
if (watched !== undefined) {
  const target = path.resolve(watched);
  const readFileSync = fs.readFileSync;
  fs.readFileSync = ((...args: Parameters<typeof readFileSync>) => {
    const content = readFileSync(...args);
    if (typeof args[0] === 'string' && path.resolve(args[0]) === target) {
      const sha256 = createHash('sha256').update(content).digest('hex');
      // A pipe to the test: written synchronously on Linux, so the line is whole.
      process.stdout.write(`${JSON.stringify({ msg: 'test: file read', file: target, sha256 })}\n`);
    }
    return content;
  }) as typeof fs.readFileSync;
}
