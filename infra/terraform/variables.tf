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
  description = "32-byte urlsafe-base64 key sealing camera credentials, TOTP seeds and signing keys."
  type        = string
  sensitive   = true
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
