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
{{- end -}}
{{- define "ephemera.policyVolume" -}}
{name: policy, configMap: {name: {{ include "ephemera.fullname" . }}-policy}}
{{- end -}}
