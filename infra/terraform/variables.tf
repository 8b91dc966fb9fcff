variable "department_code" {
  description = "INSEE code of the département running the centre (e.g. 95)."
  type        = string
  validation {
    condition     = can(regex("^([0-9]{2,3}|2A|2B)$", var.department_code))
    error_message = "department_code is a département code such as 95, 2A or 971."
  }
}

variable "public_url" {
  description = "Public HTTPS URL of the API, behind the TLS proxy."
  type        = string
}

variable "trusted_proxies" {
  description = "CIDRs of the TLS proxies / load balancers in front of the API (they set X-Forwarded-For)."
  type        = list(string)
}

variable "postgres_host" {
  description = "Postgres primary (Patroni endpoint or managed instance)."
  type        = string
}

variable "postgres_app_password" {
  type      = string
  sensitive = true
}

variable "postgres_department_password" {
  type      = string
  sensitive = true
}

variable "nats_urls" {
  description = "The three nodes of the JetStream cluster (server >= 2.12.3, sync_interval always)."
  type        = list(string)
  validation {
    condition     = length(var.nats_urls) >= 3
    error_message = "production runs a three-node JetStream cluster."
  }
}

variable "object_store_endpoint" {
  description = "MinIO endpoint (host:port), TLS."
  type        = string
}

variable "object_store_access_key" {
  type      = string
  sensitive = true
}

variable "object_store_secret_key" {
  type      = string
  sensitive = true
}

variable "data_key" {
  description = "32-byte urlsafe-base64 key sealing camera credentials, TOTP seeds and signing keys (`vigie secrets generate`)."
  type        = string
  sensitive   = true
}

variable "presign_secret" {
  description = "Secret signing the API's /media links (`vigie secrets generate`); the processes refuse the development one."
  type        = string
  sensitive   = true
}

variable "nats_passwords" {
  description = "NATS password of each process's user: api, inference, alerts, dvr, mobile_push (`vigie secrets generate`)."
  type        = map(string)
  sensitive   = true
  validation {
    condition     = alltrue([for user in ["api", "inference", "alerts", "dvr", "mobile_push"] : length(lookup(var.nats_passwords, user, "")) >= 24])
    error_message = "nats_passwords needs a password of at least 24 characters for api, inference, alerts, dvr and mobile_push."
  }
}

variable "nats_tls_ca_file" {
  description = "Path, on the hosts, of the CA that signed the NATS servers' certificates (TLS to the cluster); empty: none."
  type        = string
  default     = ""
}

variable "api_metrics_address" {
  description = "host:port of the API's Prometheus listener (internal network only; never routed by the public load balancer)."
  type        = string
  default     = "0.0.0.0:9100"
}

variable "oidc_issuer" {
  description = "External identity provider (ProConnect, Keycloak); empty disables federated sign-in."
  type        = string
  default     = ""
}

variable "recorder_shards" {
  description = "Tenant ids per recorder deployment; an empty list records every tenant."
  type        = list(list(string))
  default     = [[]]
}

variable "output_dir" {
  description = "Where the env files are written."
  type        = string
  default     = "./rendered"
}
