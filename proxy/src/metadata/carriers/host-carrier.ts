// `https://<id>.gw.example/...` or a vanity host (the subdomain and vanity-host modes): the Host
// (or absolute-form authority) the request arrived with. Nothing to strip: Host is per hop.

import type { Carrier } from './carrier.ts';

export const hostCarrier: Carrier = {
  mode: 'host',
  enabled: (route) => route.addressing.hosts.length > 0,
  indexKeys: (route) => route.addressing.hosts,
  claim(input, table) {
    const host = input.target.host;
    return host === undefined ? undefined : table.byKey('host', host);
  },
  strip() {
    // The forwarder sends the backend's own Host.
  },
};
