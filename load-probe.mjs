import { loadRoutesFile } from './dist/proxy/src/table/routes-file.js';
const t0 = performance.now();
const r = loadRoutesFile(process.argv[2]);
console.log('routes', r.snapshot.routes.length, 'ms', Math.round(performance.now() - t0), 'rss', Math.round(process.memoryUsage().rss / 1048576), 'heap', Math.round(process.memoryUsage().heapUsed / 1048576));
global.gc?.(); console.log('after gc heap', Math.round(process.memoryUsage().heapUsed / 1048576), 'rss', Math.round(process.memoryUsage().rss / 1048576));
