// Standalone table source: the routes file is loaded at start and watched; a refused file keeps the
// table in force (or, at start, leaves the proxy unready until the file is fixed).

import type { TableHolder } from './table-holder.ts';
import { loadRoutesFile, RoutesFileError, watchRoutesFile, type LoadedRoutes } from './routes-file.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { ProxyMetrics } from '../telemetry/metrics.ts';

export interface TableSource {
  close(): void;
}

export function startFileSource(
  routesFile: string,
  holder: TableHolder,
  logger: Logger,
  metrics: ProxyMetrics,
  watchOptions: { debounceMs?: number; pollMs?: number } | undefined,
): TableSource {
  let last: LoadedRoutes | undefined;
  let refusedAtStart: RoutesFileError | undefined;
  try {
    const loaded = loadRoutesFile(routesFile);
    try {
      holder.install(loaded.snapshot);
    } catch (installErr) {
      // A table the proxy cannot run (a backend's TLS material that does not load) is a refusal.
      throw new RoutesFileError(routesFile, [installErr instanceof Error ? installErr.message : String(installErr)]);
    }
    holder.confirmed();
    last = loaded;
    logger.log('info', 'route table loaded', { file: routesFile, version: loaded.snapshot.version, routes: loaded.snapshot.routes.length });
  } catch (err) {
    if (!(err instanceof RoutesFileError)) throw err;
    refusedAtStart = err;
    // Not fatal: the proxy stays unready and answers 503 until a valid file appears.
    metrics.tableRejected();
    logger.log('error', 'routes file refused; not ready until it is fixed', { file: routesFile, problems: err.problems });
  }
  const watcher = watchRoutesFile(
    routesFile,
    last,
    (loaded) => {
      const table = holder.install(loaded.snapshot);
      holder.confirmed();
      logger.log('info', 'route table reloaded', { file: routesFile, version: table.version, routes: table.size });
    },
    (err) => {
      holder.unconfirmed();
      metrics.tableRejected();
      logger.log('error', 'routes file change refused; keeping the table in force', {
        file: routesFile,
        version: holder.current.version,
        problems: err.problems,
      });
    },
    { ...watchOptions, ...(refusedAtStart === undefined ? {} : { alreadyRefused: refusedAtStart }) },
  );
  return watcher;
}
