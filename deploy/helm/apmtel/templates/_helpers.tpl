{{/* Name of the release's objects: <release>-apmtel, or the release name when it already says apmtel. */}}
{{- define "apmtel.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "apmtel.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector of one component: call with (dict "ctx" $ "component" "worker"). */}}
{{- define "apmtel.selector" -}}
app.kubernetes.io/name: {{ .ctx.Chart.Name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "apmtel.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Pod-level settings shared by every component. */}}
{{- define "apmtel.podSpec" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets: {{- toYaml . | nindent 2 }}
{{- end }}
securityContext: {{- toYaml .Values.podSecurityContext | nindent 2 }}
automountServiceAccountToken: false
{{- with .Values.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  # APMTEL_DATA_DIR (payload files when no telemetry cluster is configured)
  # on a read-only root filesystem.
  - name: data
    emptyDir: {}
{{- if .Values.caCert.secretName }}
  - name: ca
    secret:
      secretName: {{ .Values.caCert.secretName }}
      items: [{key: {{ .Values.caCert.key }}, path: ca.crt}]
{{- end }}
{{- if .Values.fleet.enabled }}
  # Whole volumes, no subPath: the kubelet then swaps in a changed
  # ConfigMap or Secret, and apmtel picks it up without a restart.
  - name: clusters
    configMap:
      name: {{ include "apmtel.fullname" . }}-clusters
{{- range $i, $s := .Values.fleet.secrets }}
  - name: cluster-secret-{{ $i }}
    secret:
      secretName: {{ required (printf "fleet.secrets[%d].name" $i) $s.name }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Where the pods read the clusters file (APMTEL_CLUSTERS_FILE). */}}
{{- define "apmtel.clustersFile" -}}
/etc/apmtel/clusters/clusters.yml
{{- end -}}

{{/* The clusters file: fleet.clusters under "clusters:", checked for secrets
written into it (only *_file references belong there). */}}
{{- define "apmtel.clustersYAML" -}}
{{- if not .Values.fleet.clusters }}
{{- fail "fleet.enabled needs fleet.clusters: the clusters file's entries" }}
{{- end }}
{{- range $i, $c := .Values.fleet.clusters }}
{{- range $k := list "api_key" "password" "apiKey" "secret" }}
{{- if hasKey $c $k }}
{{- fail (printf "fleet.clusters[%d].%s: secrets go into a Secret listed in fleet.secrets, referenced by api_key_file or password_file" $i $k) }}
{{- end }}
{{- end }}
{{- end }}
{{- dict "clusters" .Values.fleet.clusters | toYaml }}
{{- end -}}

{{/* Container settings shared by every component: image, configuration,
secrets, CA. Call with (dict "ctx" $ "env" (dict "APMTEL_X" "value")) for
variables of one component. */}}
{{- define "apmtel.container" -}}
{{- $ := .ctx -}}
image: {{ include "apmtel.image" $ }}
imagePullPolicy: {{ $.Values.image.pullPolicy }}
securityContext: {{- toYaml $.Values.securityContext | nindent 2 }}
envFrom:
  - configMapRef:
      name: {{ include "apmtel.fullname" $ }}
env:
{{- if not (hasKey $.Values.secrets "APMTEL_MONITOR_TOKEN") }}
{{- fail "secrets.APMTEL_MONITOR_TOKEN is required: pods serve /metrics and Asynqmon on their pod IP" }}
{{- end }}
{{- range $env, $ref := $.Values.secrets }}
{{- if not (and $.Values.fleet.enabled (hasPrefix "APMTEL_SOURCE_" $env)) }}
  - name: {{ $env }}
    valueFrom:
      secretKeyRef: {name: {{ required (printf "secrets.%s.name" $env) $ref.name }}, key: {{ required (printf "secrets.%s.key" $env) $ref.key }}}
{{- end }}
{{- end }}
{{- range $env, $v := .env }}
  - name: {{ $env }}
    value: {{ $v | toString | quote }}
{{- end }}
{{- if $.Values.caCert.secretName }}
{{- if not $.Values.fleet.enabled }}
  - name: APMTEL_SOURCE_CA_CERT
    value: /etc/apmtel/ca/ca.crt
{{- end }}
  - name: APMTEL_TELEMETRY_CA_CERT
    value: /etc/apmtel/ca/ca.crt
{{- end }}
volumeMounts:
  - name: data
    mountPath: /home/nonroot/data
{{- if $.Values.caCert.secretName }}
  - name: ca
    mountPath: /etc/apmtel/ca
    readOnly: true
{{- end }}
{{- if $.Values.fleet.enabled }}
  - name: clusters
    mountPath: {{ include "apmtel.clustersFile" $ | dir }}
    readOnly: true
{{- range $i, $s := $.Values.fleet.secrets }}
  - name: cluster-secret-{{ $i }}
    mountPath: /etc/apmtel/secrets/{{ $s.name }}
    readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{/* Probes of worker and scheduler on APMTEL_HTTP_ADDR. */}}
{{- define "apmtel.httpProbes" -}}
ports:
  - name: http
    containerPort: {{ .Values.httpPort }}
livenessProbe:
  httpGet: {path: /healthz, port: http}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /readyz, port: http}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 2
{{- end -}}

{{/* Restart pods when the configuration changes. */}}
{{- define "apmtel.podAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}
