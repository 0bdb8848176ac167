// kube-apiserver for the fhirmesh cluster tests, built from the k8s.io/kubernetes module by
// build-control-plane.sh. The blank imports match the upstream binary's, so --logging-format=json,
// CronJob time zones and the version metrics behave as in a release build.
package main

import (
	"os"
	_ "time/tzdata"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
