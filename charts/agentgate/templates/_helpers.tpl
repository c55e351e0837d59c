{{/*
Names are fixed, not derived from the release name: the webhook configurations and cluster RBAC are
cluster-scoped, the server is told their names (--webhook-configurations), and the ClusterRole grants updates
to those names only. One release per cluster.
*/}}

{{/* Labels on every object: the ones manifests/ puts there, and Helm's own. */}}
{{- define "agentgate.labels" -}}
app.kubernetes.io/name: agentgate
app.kubernetes.io/part-of: agentgate
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* The pods' labels and the selector of the Deployment, Service, PDB and spread constraints. */}}
{{- define "agentgate.selectorLabels" -}}
app.kubernetes.io/name: agentgate
app.kubernetes.io/component: webhook
{{- end }}

{{- define "agentgate.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{ printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else -}}
{{ printf "%s:%s" .Values.image.repository $tag }}
{{- end -}}
{{- end }}

{{/*
namespaceSelector of a webhook that selects agent namespaces: the value's selector, plus kube-system and the
release namespace excluded by name whatever the value says (no deadlock, never blocking kube-system).
*/}}
{{- define "agentgate.agentNamespaceSelector" -}}
{{- $sel := deepCopy (.selector | default dict) -}}
{{- $exclude := dict "key" "kubernetes.io/metadata.name" "operator" "NotIn" "values" (list "kube-system" .namespace) -}}
{{- $_ := set $sel "matchExpressions" (append ($sel.matchExpressions | default list) $exclude) -}}
{{- toYaml $sel -}}
{{- end }}

{{/* The service the webhook configurations call. */}}
{{- define "agentgate.clientConfig" -}}
service: {name: agentgate-webhook, namespace: {{ .namespace }}, path: {{ .path }}, port: 443}
{{- end }}

{{/* cert-manager's CA injector fills caBundle from this Certificate. */}}
{{- define "agentgate.webhookAnnotations" -}}
{{- $a := deepCopy (.Values.webhooks.annotations | default dict) -}}
{{- if eq .Values.certificates.mode "cert-manager" -}}
{{- $_ := set $a "cert-manager.io/inject-ca-from" (printf "%s/agentgate-serving" .Release.Namespace) -}}
{{- end -}}
{{- with $a }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
