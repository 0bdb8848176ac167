// Where desired statuses are written: Kubernetes mode's status subresource writer (leader only).
// Standalone mode has none: there /debug/status shows the desired statuses themselves.

/**
 * Told which routes' desired status may differ from what is written. A sink only writes: it reads
 * the status from DesiredStatuses when it writes, and queues, deduplicates and retries on its own.
 */
export interface StatusSink {
  /** `key` is namespace/name; a key with no desired status any more is a route gone. Never blocks. */
  enqueue(key: string): void;
}
