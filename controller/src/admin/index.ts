// Public surface of admin/: the HTTP listener for probes, metrics and /debug/status.

export { createAdminServer, type AdminServerOptions } from './admin-server.ts';
