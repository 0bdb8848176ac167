// CoreDNS for the fhirmesh e2e cluster with only the plugins its Corefile uses. Upstream's main
// imports core/plugin (every plugin, with cloud SDKs); this one has no forward plugin at all, so
// the cluster's DNS cannot send a query off the machine whatever the Corefile says.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
