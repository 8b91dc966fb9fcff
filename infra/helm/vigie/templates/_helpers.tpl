{{/* Names, labels and the pieces every Vigie pod shares. */}}

{{- define "vigie.name" -}}
{{- printf "vigie-%s" (. | replace "_" "-") -}}
{{- end -}}

{{- define "vigie.labels" -}}
app.kubernetes.io/name: vigie
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
app.kubernetes.io/component: {{ .component | replace "_" "-" }}
{{- end -}}

{{- define "vigie.selector" -}}
app.kubernetes.io/name: vigie
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component | replace "_" "-" }}
{{- end -}}

{{- define "vigie.image" -}}
{{- $image := ternary .root.Values.gpuImage .root.Values.image (default false .gpu) -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository $image.tag -}}
{{- end -}}
{{- end -}}

{{- define "vigie.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "vigie.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The environment of a process: the shared settings, its own, and its Secret (see externalsecrets.yaml). */}}
{{- define "vigie.env" -}}
envFrom:
  - configMapRef:
      name: vigie-config
  - secretRef:
      name: {{ include "vigie.name" .secrets }}-secrets
{{- with .env }}
env:
{{- range $key, $value := . }}
  - name: {{ $key }}
    value: {{ $value | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Writable scratch: the root filesystem is read-only; var/ holds caches the processes write (fonts, spool). */}}
{{- define "vigie.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
- name: var
  mountPath: /app/var
- name: internal-ca
  mountPath: /etc/vigie/ca
  readOnly: true
{{- end -}}

{{- define "vigie.scratchVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
- name: var
  emptyDir:
    sizeLimit: 2Gi
- name: internal-ca
  configMap:
    name: {{ .Values.objectStore.caConfigMap }}
    # A managed S3 with a public certificate needs no internal CA.
    optional: true
{{- end -}}
