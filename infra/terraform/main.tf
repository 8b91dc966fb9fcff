locals {
  common = {
    VIGIE_ENVIRONMENT                      = "production"
    VIGIE_DEPARTMENT_CODE                  = var.department_code
    VIGIE_DATA_KEY                         = var.data_key
    VIGIE_DATABASE__HOST                   = var.postgres_host
    VIGIE_DATABASE__APP_PASSWORD           = var.postgres_app_password
    VIGIE_DATABASE__EMBEDDED_FALLBACK      = "false"
    VIGIE_NATS__URL                        = join(",", var.nats_urls)
    VIGIE_NATS__EMBEDDED                   = "false"
    VIGIE_NATS__STREAM_REPLICAS            = "3"
    VIGIE_OBJECTSTORE_BACKEND              = "s3"
    VIGIE_OBJECTSTORE_ENDPOINT             = var.object_store_endpoint
    VIGIE_OBJECTSTORE_ACCESS_KEY           = var.object_store_access_key
    VIGIE_OBJECTSTORE_SECRET_KEY           = var.object_store_secret_key
    VIGIE_OBJECTSTORE_SECURE               = "true"
    VIGIE_LOG_LEVEL                        = "INFO"
  }
  # The API signs in through the sign-in functions: only the processes that run department jobs get this role.
  department = merge(local.common, {
    VIGIE_DATABASE__DEPARTMENT_PASSWORD = var.postgres_department_password
  })
  api = merge(local.common, {
    VIGIE_API__PUBLIC_URL = var.public_url
    VIGIE_API__HOST       = "0.0.0.0"
    VIGIE_OIDC__ISSUER    = var.oidc_issuer
  })
}

resource "local_sensitive_file" "api_env" {
  filename        = "${var.output_dir}/api.env"
  file_permission = "0600"
  content         = join("\n", [for k, v in local.api : "${k}=${v}"])
}

resource "local_sensitive_file" "recorder_env" {
  count           = length(var.recorder_shards)
  filename        = "${var.output_dir}/dvr-${count.index}.env"
  file_permission = "0600"
  content = join("\n", [for k, v in merge(local.department, {
    VIGIE_DVR_TENANT_IDS = jsonencode(var.recorder_shards[count.index])
  }) : "${k}=${v}"])
}

resource "local_sensitive_file" "worker_env" {
  for_each        = toset(["inference", "alerts", "mobile_push"])
  filename        = "${var.output_dir}/${each.key}.env"
  file_permission = "0600"
  content         = join("\n", [for k, v in local.department : "${k}=${v}"])
}
