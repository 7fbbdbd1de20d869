{{/*
Chart name, truncated to the 63 characters of a label value.
*/}}
{{- define "firstops-sidecar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name prefix of every resource. Kept to 45 characters so that suffixes
such as "-injector-pdb" still fit the 63-character limit.
*/}}
{{- define "firstops-sidecar.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 45 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "firstops-sidecar.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Recommended labels (app.kubernetes.io/*) for every object.
*/}}
{{- define "firstops-sidecar.labels" -}}
helm.sh/chart: {{ include "firstops-sidecar.chart" . }}
{{ include "firstops-sidecar.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: firstops
{{- end }}

{{- define "firstops-sidecar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "firstops-sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels selecting the injector pods.
*/}}
{{- define "firstops-sidecar.injectorSelectorLabels" -}}
{{ include "firstops-sidecar.selectorLabels" . }}
app.kubernetes.io/component: injector
{{- end }}

{{- define "firstops-sidecar.injectorName" -}}
{{- printf "%s-injector" (include "firstops-sidecar.fullname" .) }}
{{- end }}

{{- define "firstops-sidecar.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "firstops-sidecar.injectorName" .) .Values.serviceAccount.name }}
{{- else }}
{{- .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference shared by the injector and the injected sidecar.
*/}}
{{- define "firstops-sidecar.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "firstops-sidecar.webhookName" -}}
{{- printf "%s-%s" (include "firstops-sidecar.fullname" .) .Release.Namespace | trunc 253 | trimSuffix "-" }}
{{- end }}

{{- define "firstops-sidecar.tlsSecretName" -}}
{{- printf "%s-webhook-tls" (include "firstops-sidecar.fullname" .) }}
{{- end }}

{{- define "firstops-sidecar.certificateName" -}}
{{- printf "%s-webhook" (include "firstops-sidecar.fullname" .) }}
{{- end }}

{{- define "firstops-sidecar.issuerName" -}}
{{- printf "%s-selfsigned" (include "firstops-sidecar.fullname" .) }}
{{- end }}

{{/*
cert-manager chain created when webhook.tls.certManager.issuerRef.name is
empty: self-signed Issuer -> CA Certificate (its Secret holds the CA) -> CA
Issuer -> serving Certificate. The caBundle injected from the serving
Certificate is the long-lived CA, so it does not change when the serving
certificate is renewed.
*/}}
{{- define "firstops-sidecar.caCertificateName" -}}
{{- printf "%s-webhook-ca" (include "firstops-sidecar.fullname" .) }}
{{- end }}

{{- define "firstops-sidecar.caIssuerName" -}}
{{- printf "%s-ca" (include "firstops-sidecar.fullname" .) }}
{{- end }}

{{/*
DNS names of the webhook Service, for the serving certificate.
*/}}
{{- define "firstops-sidecar.serviceDnsNames" -}}
{{- $svc := include "firstops-sidecar.injectorName" . }}
{{- $ns := .Release.Namespace }}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson }}
{{- end }}

{{/*
Webhook CA, certificate and key for webhook.tls.mode=auto, as a dict of
base64 strings {ca, cert, key}. The Secret and the webhook configuration live
in different template files and both need the same CA, so the result is
computed once per render and cached on the root context. An existing Secret
(lookup) is reused so that the CA stays stable across helm upgrade.
*/}}
{{- define "firstops-sidecar.autoTls" -}}
{{- if not (hasKey $ "firstopsAutoTls") }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "firstops-sidecar.tlsSecretName" .) }}
{{- $data := dict }}
{{- if and $existing (hasKey $existing "data") }}
{{- $data = $existing.data }}
{{- end }}
{{- if and (hasKey $data "ca.crt") (hasKey $data "tls.crt") (hasKey $data "tls.key") }}
{{- $_ := set $ "firstopsAutoTls" (dict "ca" (index $data "ca.crt") "cert" (index $data "tls.crt") "key" (index $data "tls.key")) }}
{{- else }}
{{- $days := int .Values.webhook.tls.auto.validityDays }}
{{- $names := include "firstops-sidecar.serviceDnsNames" . | fromJsonArray }}
{{- $ca := genCA (printf "%s-webhook-ca" (include "firstops-sidecar.fullname" .)) $days }}
{{- $cert := genSignedCert (index $names 2) nil $names $days $ca }}
{{- $_ := set $ "firstopsAutoTls" (dict "ca" ($ca.Cert | b64enc) "cert" ($cert.Cert | b64enc) "key" ($cert.Key | b64enc)) }}
{{- end }}
{{- end }}
{{- toJson (get $ "firstopsAutoTls") }}
{{- end }}

{{/*
Environment of the injected sidecar, rendered as the JSON object the injector
reads from FIRSTOPS_INJECTOR_SIDECAR_ENV.
*/}}
{{- define "firstops-sidecar.sidecarEnv" -}}
{{- $s := .Values.sidecar }}
{{- $env := dict "FIRSTOPS_FAIL_MODE" $s.failMode "FIRSTOPS_LOG_LEVEL" $s.logLevel }}
{{- with $s.gatewayUrl }}{{ $_ := set $env "FIRSTOPS_GATEWAY_URL" . }}{{ end }}
{{- with $s.adminHost }}{{ $_ := set $env "FIRSTOPS_ADMIN_HOST" . }}{{ end }}
{{- /* "not kindIs invalid" rather than "with": 0 is a valid drainTimeoutMs (no drain) and must not be dropped. */}}
{{- if not (kindIs "invalid" $s.policyTimeoutMs) }}{{ $_ := set $env "FIRSTOPS_POLICY_TIMEOUT_MS" (printf "%d" (int64 $s.policyTimeoutMs)) }}{{ end }}
{{- if not (kindIs "invalid" $s.maxBodyBytes) }}{{ $_ := set $env "FIRSTOPS_MAX_BODY_BYTES" (printf "%d" (int64 $s.maxBodyBytes)) }}{{ end }}
{{- if not (kindIs "invalid" $s.drainTimeoutMs) }}{{ $_ := set $env "FIRSTOPS_DRAIN_TIMEOUT_MS" (printf "%d" (int64 $s.drainTimeoutMs)) }}{{ end }}
{{- if kindIs "string" $s.debugPort }}{{ $_ := set $env "FIRSTOPS_DEBUG_PORT" $s.debugPort }}
{{- else if not (kindIs "invalid" $s.debugPort) }}{{ $_ := set $env "FIRSTOPS_DEBUG_PORT" (printf "%d" (int64 $s.debugPort)) }}{{ end }}
{{- range $name, $url := $s.upstreams }}
{{- $_ := set $env (printf "FIRSTOPS_UPSTREAM_%s" ($name | upper | replace "-" "_")) $url }}
{{- end }}
{{- with $s.egress.httpsProxy }}{{ $_ := set $env "HTTPS_PROXY" . }}{{ end }}
{{- with $s.egress.httpProxy }}{{ $_ := set $env "HTTP_PROXY" . }}{{ end }}
{{- with $s.egress.noProxy }}{{ $_ := set $env "NO_PROXY" . }}{{ end }}
{{- if ne $s.egress.proxyMode "env" }}{{ $_ := set $env "FIRSTOPS_PROXY_MODE" $s.egress.proxyMode }}{{ end }}
{{- range $name, $value := $s.extraEnv }}
{{- $_ := set $env $name (toString $value) }}
{{- end }}
{{- toJson $env }}
{{- end }}

{{/*
Every variable the sidecar reads (src/config.ts VARIABLES; a test keeps the
two in sync), besides FIRSTOPS_UPSTREAM_<NAME>. A FIRSTOPS_* name in
sidecar.extraEnv that is not listed here is a typo the sidecar would ignore.
*/}}
{{- define "firstops-sidecar.sidecarVariables" -}}
{{- list "FIRSTOPS_GATEWAY_URL" "FIRSTOPS_IDENTITY_DIR" "FIRSTOPS_LISTEN_HOST" "FIRSTOPS_PORT" "FIRSTOPS_ADMIN_HOST" "FIRSTOPS_ADMIN_PORT" "FIRSTOPS_POLICY_FILE" "FIRSTOPS_REMOTE_POLICY" "FIRSTOPS_FAIL_MODE" "FIRSTOPS_RESPONSE_REMOTE" "FIRSTOPS_POLICY_TIMEOUT_MS" "FIRSTOPS_POLICY_BUDGET_MS" "FIRSTOPS_POLICY_WORKERS" "FIRSTOPS_POLICY_OFFLOAD_BYTES" "FIRSTOPS_MAX_BODY_BYTES" "FIRSTOPS_MEMORY_BUDGET_BYTES" "FIRSTOPS_LOG_LEVEL" "FIRSTOPS_DRAIN_TIMEOUT_MS" "FIRSTOPS_RESPONSE_TIMEOUT_MS" "FIRSTOPS_CONNECT_TIMEOUT_MS" "FIRSTOPS_RELOAD_INTERVAL_MS" "FIRSTOPS_PROXY_MODE" "FIRSTOPS_DEBUG_HOST" "FIRSTOPS_DEBUG_PORT" "FIRSTOPS_DEBUG_ALLOW_REMOTE" "FIRSTOPS_DEBUG_HISTORY" "FIRSTOPS_USAGE_METRICS" | toJson }}
{{- end }}

{{/*
Render-time checks of value combinations the schema cannot express.
*/}}
{{- define "firstops-sidecar.validate" -}}
{{- $v := .Values }}
{{- if and $v.injector.podDisruptionBudget.enabled (ge (int $v.injector.podDisruptionBudget.minAvailable) (int $v.injector.replicaCount)) }}
{{- fail (printf "injector.podDisruptionBudget.minAvailable (%d) must be lower than injector.replicaCount (%d), otherwise node drains block forever; raise replicaCount or disable the PodDisruptionBudget" (int $v.injector.podDisruptionBudget.minAvailable) (int $v.injector.replicaCount)) }}
{{- end }}
{{- if and (eq $v.webhook.failurePolicy "Fail") (not $v.webhook.matchConditions) (empty $v.webhook.namespaceLabels) }}
{{- fail "webhook.failurePolicy=Fail with webhook.matchConditions=false and no webhook.namespaceLabels would block the creation of every pod in every namespace while the injector is unavailable; set webhook.namespaceLabels (e.g. firstops.dev/injection: enabled), enable matchConditions, or use failurePolicy Ignore" }}
{{- end }}
{{- if and (not $v.serviceAccount.create) (empty $v.serviceAccount.name) }}
{{- fail "serviceAccount.name is required when serviceAccount.create is false" }}
{{- end }}
{{- if and $v.sidecar.nativeSidecar (semverCompare "<1.29-0" .Capabilities.KubeVersion.Version) }}
{{- fail (printf "sidecar.nativeSidecar needs Kubernetes 1.29 or later (cluster is %s); set sidecar.nativeSidecar=false" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if and $v.webhook.matchConditions (semverCompare "<1.28-0" .Capabilities.KubeVersion.Version) }}
{{- fail (printf "webhook.matchConditions needs Kubernetes 1.28 or later (cluster is %s); set webhook.matchConditions=false and scope the webhook with webhook.namespaceLabels" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if and (eq $v.webhook.tls.mode "cert-manager") (eq $v.webhook.tls.certManager.issuerRef.kind "ClusterIssuer") (empty $v.webhook.tls.certManager.issuerRef.name) }}
{{- fail "webhook.tls.certManager.issuerRef.name is required when issuerRef.kind is ClusterIssuer (leave kind Issuer and name empty to let the chart create a self-signed Issuer)" }}
{{- end }}
{{- range $name := list "FIRSTOPS_GATEWAY_URL" "FIRSTOPS_FAIL_MODE" "FIRSTOPS_LOG_LEVEL" "FIRSTOPS_POLICY_TIMEOUT_MS" "FIRSTOPS_MAX_BODY_BYTES" "FIRSTOPS_DRAIN_TIMEOUT_MS" "FIRSTOPS_DEBUG_PORT" }}
{{- if hasKey $v.sidecar.extraEnv $name }}
{{- fail (printf "sidecar.extraEnv.%s is managed by the chart; set the matching sidecar.* value instead" $name) }}
{{- end }}
{{- end }}
{{- $e := $v.sidecar.egress }}
{{- range $pair := list (list $e.httpsProxy "HTTPS_PROXY" "httpsProxy") (list $e.httpProxy "HTTP_PROXY" "httpProxy") (list $e.noProxy "NO_PROXY" "noProxy") }}
{{- if and (index $pair 0) (or (hasKey $v.sidecar.extraEnv (index $pair 1)) (hasKey $v.sidecar.extraEnv (lower (index $pair 1)))) }}
{{- fail (printf "sidecar.extraEnv.%s (either case) and sidecar.egress.%s are mutually exclusive; keep sidecar.egress.%s" (index $pair 1) (index $pair 2) (index $pair 2)) }}
{{- end }}
{{- end }}
{{- if hasKey $v.sidecar.extraEnv "FIRSTOPS_PROXY_MODE" }}
{{- fail "sidecar.extraEnv.FIRSTOPS_PROXY_MODE is managed by the chart; set sidecar.egress.proxyMode instead" }}
{{- end }}
{{- if and $e.caBundle.configMap $e.caBundle.secret }}
{{- fail "sidecar.egress.caBundle.configMap and sidecar.egress.caBundle.secret are mutually exclusive: the CA bundle comes from one of them" }}
{{- end }}
{{- if and (or $e.caBundle.configMap $e.caBundle.secret) (hasKey $v.sidecar.extraEnv "NODE_EXTRA_CA_CERTS") }}
{{- fail "sidecar.egress.caBundle and sidecar.extraEnv.NODE_EXTRA_CA_CERTS are mutually exclusive: the chart sets NODE_EXTRA_CA_CERTS to the mounted bundle" }}
{{- end }}
{{- $known := include "firstops-sidecar.sidecarVariables" . | fromJsonArray }}
{{- range $name, $_ := $v.sidecar.extraEnv }}
{{- if hasPrefix "FIRSTOPS_UPSTREAM_" $name }}
{{- fail (printf "sidecar.extraEnv.%s: declare upstreams in sidecar.upstreams instead" $name) }}
{{- else if or (hasPrefix "FIRSTOPS_TLS_CLIENT_CERT_" $name) (hasPrefix "FIRSTOPS_TLS_CLIENT_KEY_" $name) }}
{{- fail (printf "sidecar.extraEnv.%s: declare client certificates in sidecar.egress.clientCertificates (the chart mounts the Secret)" $name) }}
{{- else if and (hasPrefix "FIRSTOPS_" $name) (not (has $name $known)) }}
{{- fail (printf "sidecar.extraEnv.%s is not a variable the sidecar reads (known: %s)" $name (join ", " $known)) }}
{{- end }}
{{- end }}
{{- if and $v.sidecar.adminHost (hasKey $v.sidecar.extraEnv "FIRSTOPS_ADMIN_HOST") }}
{{- fail "sidecar.adminHost and sidecar.extraEnv.FIRSTOPS_ADMIN_HOST are mutually exclusive; keep sidecar.adminHost" }}
{{- end }}
{{- if and $v.sidecar.policy.configMap (hasKey $v.sidecar.extraEnv "FIRSTOPS_POLICY_FILE") }}
{{- fail "sidecar.policy.configMap and sidecar.extraEnv.FIRSTOPS_POLICY_FILE are mutually exclusive" }}
{{- end }}
{{- if eq (int $v.injector.port) (int $v.injector.metricsPort) }}
{{- fail "injector.port and injector.metricsPort must differ" }}
{{- end }}
{{- end }}
