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
