{{/* Names and labels shared by every template of the chart. */}}

{{- define "fhirmesh.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "fhirmesh.controllerName" -}}
{{- printf "%s-controller" (include "fhirmesh.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "fhirmesh.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "fhirmesh.controllerName" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "fhirmesh.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "fhirmesh.labels" -}}
{{ include "fhirmesh.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Leader election is on whenever more than one replica runs: two replicas writing status would fight. */}}
{{- define "fhirmesh.leaderElect" -}}
{{- if or .Values.controller.leaderElection.enabled (gt (int .Values.controller.replicas) 1) -}}true{{- end -}}
{{- end -}}

{{- define "fhirmesh.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The controller Service's DNS name: proxies dial it and check it in the controller's certificate. */}}
{{- define "fhirmesh.controllerHost" -}}
{{- printf "%s.%s.svc" (include "fhirmesh.controllerName" .) .Release.Namespace -}}
{{- end -}}

{{- define "fhirmesh.injectorName" -}}
{{- printf "%s-injector" (include "fhirmesh.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "fhirmesh.gatewayName" -}}
{{- printf "%s-gateway" (include "fhirmesh.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "fhirmesh.gatewaySelectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end -}}

{{/* Labels of objects that belong to no one component (webhook, aggregated roles, monitors). */}}
{{- define "fhirmesh.commonLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The hardened container securityContext of every fhirmesh container (the image's user is 65532). */}}
{{- define "fhirmesh.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* What the injector puts into pods (controller --injector-config); a change rolls the controller. */}}
{{- define "fhirmesh.injectorConfig" -}}
{{- $p := .Values.injector.proxy -}}
{{- if eq (int $p.port) (int $p.adminPort) -}}
{{- fail "injector.proxy.port and injector.proxy.adminPort must differ: the proxy's listener and its admin port share the pod's network" -}}
{{- end -}}
{{- $config := dict
  "image" (include "fhirmesh.image" .)
  "imagePullPolicy" .Values.image.pullPolicy
  "controllerAddress" (printf "%s:%v" (include "fhirmesh.controllerHost" .) .Values.service.port)
  "defaults" (dict "proxyPort" (int $p.port) "adminPort" (int $p.adminPort) "logLevel" $p.logLevel "resources" (dict "requests" ($p.resources.requests | default dict) "limits" ($p.resources.limits | default dict)))
  "tokenExpirationSeconds" (int $p.tokenExpirationSeconds) -}}
{{- if not .Values.grpc.insecure -}}
{{- $_ := set $config "controllerTls" (dict "serverName" (include "fhirmesh.controllerHost" .) "caFile" "/etc/fhirmesh/grpc-tls/ca.crt") -}}
{{- end -}}
{{- toPrettyJson $config -}}
{{- end -}}

{{/* Namespaces never sent to the webhook. */}}
{{- define "fhirmesh.injectorExcludedNamespaces" -}}
{{- $list := list "kube-system" "kube-public" "kube-node-lease" .Release.Namespace -}}
{{- toJson (concat $list .Values.injector.excludedNamespaces | uniq) -}}
{{- end -}}
