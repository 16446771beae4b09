{{- define "ephemera.fullname" -}}{{ printf "%s-ephemera" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- define "ephemera.labels" -}}
app.kubernetes.io/name: ephemera
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
{{- define "ephemera.secretName" -}}{{ .Values.existingSecret | default (include "ephemera.fullname" .) }}{{- end -}}
{{- define "ephemera.env" -}}
- name: SECRET_KEY
  valueFrom: {secretKeyRef: {name: {{ include "ephemera.secretName" . }}, key: SECRET_KEY}}
- name: DATABASE_URL
  valueFrom: {secretKeyRef: {name: {{ include "ephemera.secretName" . }}, key: DATABASE_URL}}
- name: REDIS_URL
  valueFrom: {secretKeyRef: {name: {{ include "ephemera.secretName" . }}, key: REDIS_URL}}
- {name: ALLOWED_HOSTS, value: {{ .Values.allowedHosts | quote }}}
- {name: CSRF_TRUSTED_ORIGINS, value: {{ .Values.csrfTrustedOrigins | quote }}}
- {name: EPHEMERA_BEHIND_TLS_PROXY, value: {{ ternary "1" "0" .Values.behindTlsProxy | quote }}}
- {name: EPHEMERA_DEFAULT_DURATION_MINUTES, value: {{ .Values.policy.defaultDurationMinutes | quote }}}
- {name: EPHEMERA_REQUEST_TTL_MINUTES, value: {{ .Values.policy.requestTtlMinutes | quote }}}
- {name: EPHEMERA_APPROVER_GROUP, value: {{ .Values.policy.approverGroup | quote }}}
- {name: EPHEMERA_AUDITOR_GROUP, value: {{ .Values.policy.auditorGroup | quote }}}
- {name: EPHEMERA_NODE_DEBUG_NAMESPACE, value: {{ .Values.nodeDebugNamespace | quote }}}
- {name: EPHEMERA_INSTANCE, value: {{ .Values.instance | default .Release.Name | quote }}}
- {name: LOG_FORMAT, value: {{ .Values.logFormat | quote }}}
{{- if .Values.metrics.enabled }}
- name: EPHEMERA_METRICS_TOKEN
  valueFrom: {secretKeyRef: {name: {{ include "ephemera.secretName" . }}, key: EPHEMERA_METRICS_TOKEN}}
{{- end }}
- {name: EPHEMERA_LOCAL_LOGIN, value: {{ ternary "1" "0" .Values.sso.localLogin | quote }}}
{{- if .Values.sso.issuer }}
- {name: OIDC_ISSUER, value: {{ .Values.sso.issuer | quote }}}
- {name: OIDC_CLIENT_ID, value: {{ required "sso.issuer needs sso.clientId" .Values.sso.clientId | quote }}}
- name: OIDC_CLIENT_SECRET
  valueFrom: {secretKeyRef: {name: {{ include "ephemera.secretName" . }}, key: OIDC_CLIENT_SECRET}}
- {name: OIDC_SCOPES, value: {{ .Values.sso.scopes | quote }}}
- {name: OIDC_GROUPS_CLAIM, value: {{ .Values.sso.groupsClaim | quote }}}
- {name: OIDC_ADMIN_GROUPS, value: {{ join "," .Values.sso.adminGroups | quote }}}
{{- if .Values.sso.providerName }}
- {name: OIDC_PROVIDER_NAME, value: {{ .Values.sso.providerName | quote }}}
{{- end }}
{{- else if not .Values.sso.localLogin }}
{{- fail "sso.localLogin: false needs sso.issuer (without single sign-on only superusers could sign in)" }}
{{- end }}
{{- end -}}
{{- define "ephemera.policyVolume" -}}
{name: policy, configMap: {name: {{ include "ephemera.fullname" . }}-policy}}
{{- end -}}
{{/* Pod Security "restricted", on every pod of the chart: the image's uid, never root. */}}
{{- define "ephemera.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsUser }}
fsGroup: {{ .Values.securityContext.runAsUser }}
seccompProfile: {type: RuntimeDefault}
{{- end -}}
{{/* ... and on every container: no privilege escalation, no capabilities, a read-only root
(the writable places are emptyDirs: /var/lib/ephemera and /tmp). */}}
{{- define "ephemera.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities: {drop: [ALL]}
seccompProfile: {type: RuntimeDefault}
{{- end -}}
{{/* Portal replicas on different nodes: preferred by default, required with antiAffinity: hard. */}}
{{- define "ephemera.portalAffinity" -}}
{{- $term := dict "topologyKey" .Values.antiAffinity.topologyKey "labelSelector" (dict "matchLabels" (dict "app.kubernetes.io/instance" .Release.Name "app.kubernetes.io/component" "portal")) -}}
podAntiAffinity:
{{- if eq .Values.antiAffinity.type "hard" }}
  requiredDuringSchedulingIgnoredDuringExecution:
    {{- list $term | toYaml | nindent 4 }}
{{- else }}
  preferredDuringSchedulingIgnoredDuringExecution:
    {{- list (dict "weight" 100 "podAffinityTerm" $term) | toYaml | nindent 4 }}
{{- end }}
{{- end -}}
{{/* One NetworkPolicy peer from {namespaceSelector, podSelector} (both: pods in those namespaces). */}}
{{- define "ephemera.peer" -}}
{{- $peer := dict -}}
{{- if .namespaceSelector }}{{ $_ := set $peer "namespaceSelector" .namespaceSelector }}{{ end -}}
{{- if .podSelector }}{{ $_ := set $peer "podSelector" .podSelector }}{{ end -}}
{{- if not $peer }}{{ fail "a networkPolicy peer needs a namespaceSelector or a podSelector" }}{{ end -}}
{{- toYaml $peer -}}
{{- end -}}
{{/* The peers of an egress destination: its CIDRs, its selectors when it has any, and any pod
of the cluster with anyPod (some CNIs never match pod addresses with an ipBlock). */}}
{{- define "ephemera.peers" -}}
{{- $peers := list -}}
{{- range .cidrs }}{{ $peers = append $peers (dict "ipBlock" (dict "cidr" .)) }}{{ end -}}
{{- if .anyPod }}{{ $peers = append $peers (dict "namespaceSelector" (dict)) }}{{ end -}}
{{- if or .namespaceSelector .podSelector -}}
{{- $peer := dict -}}
{{- if .namespaceSelector }}{{ $_ := set $peer "namespaceSelector" .namespaceSelector }}{{ end -}}
{{- if .podSelector }}{{ $_ := set $peer "podSelector" .podSelector }}{{ end -}}
{{- $peers = append $peers $peer -}}
{{- end -}}
{{- if not $peers }}{{ fail "each networkPolicy.egress destination needs cidrs or a selector" }}{{ end -}}
{{- toYaml $peers -}}
{{- end -}}
