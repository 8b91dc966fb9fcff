locals {
  common = merge({
    VIGIE_ENVIRONMENT                 = "production"
    VIGIE_DEPARTMENT_CODE             = var.department_code
    VIGIE_DATA_KEY                    = var.data_key
    VIGIE_DATABASE__HOST              = var.postgres_host
    VIGIE_DATABASE__APP_PASSWORD      = var.postgres_app_password
    VIGIE_DATABASE__EMBEDDED_FALLBACK = "false"
    VIGIE_NATS__URL                   = join(",", var.nats_urls)
    VIGIE_NATS__EMBEDDED              = "false"
    VIGIE_NATS__STREAM_REPLICAS       = "3"
    VIGIE_OBJECTSTORE_BACKEND         = "s3"
    VIGIE_OBJECTSTORE_ENDPOINT        = var.object_store_endpoint
    VIGIE_OBJECTSTORE_ACCESS_KEY      = var.object_store_access_key
    VIGIE_OBJECTSTORE_SECRET_KEY      = var.object_store_secret_key
    VIGIE_OBJECTSTORE_SECURE          = "true"
    VIGIE_OBJECTSTORE_PRESIGN_SECRET  = var.presign_secret
    VIGIE_LOG_LEVEL                   = "INFO"
    }, var.nats_tls_ca_file == "" ? {} : {
    VIGIE_NATS__TLS_CA_FILE = var.nats_tls_ca_file
  })
  # Least privilege on the bus: one NATS user per process, with the permissions of core/nats_auth.py (the same
  # table, exported to nats-permissions.json and checked equal by tests/integration/test_bus_permissions.py).
  nats_permissions = jsondecode(file("${path.module}/nats-permissions.json"))
  nats = { for user in keys(local.nats_permissions) : user => {
    VIGIE_NATS__USER     = user
    VIGIE_NATS__PASSWORD = var.nats_passwords[user]
  } }
  # The API signs in through the sign-in functions: only the processes that run department jobs get this role.
  department = merge(local.common, {
    VIGIE_DATABASE__DEPARTMENT_PASSWORD = var.postgres_department_password
  })
  api = merge(local.common, local.nats["api"], {
    VIGIE_API__PUBLIC_URL = var.public_url
    VIGIE_API__HOST       = "0.0.0.0"
    # Only these peers are believed when they name the client in X-Forwarded-For: without them every sign-in would
    # count against the load balancer's own address.
    VIGIE_API__TRUSTED_PROXIES = jsonencode(var.trusted_proxies)
    # Prometheus scrapes this listener on the internal network; the public load balancer forwards only the API port.
    VIGIE_API__METRICS_ADDRESS = var.api_metrics_address
    VIGIE_OIDC__ISSUER         = var.oidc_issuer
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
  content = join("\n", [for k, v in merge(local.department, local.nats["dvr"], {
    VIGIE_DVR_TENANT_IDS = jsonencode(var.recorder_shards[count.index])
  }) : "${k}=${v}"])
}

resource "local_sensitive_file" "worker_env" {
  for_each        = toset(["inference", "alerts", "mobile_push"])
  filename        = "${var.output_dir}/${each.key}.env"
  file_permission = "0600"
  content         = join("\n", [for k, v in merge(local.department, local.nats[each.key]) : "${k}=${v}"])
}

# The users of the JetStream cluster, to include in each node's configuration (`include nats-users.conf`): one per
# process, with its password and its publish/subscribe permissions. nats-server reads JSON.
resource "local_sensitive_file" "nats_users" {
  filename        = "${var.output_dir}/nats-users.conf"
  file_permission = "0600"
  content = jsonencode({
    authorization = {
      users = [for user, permissions in local.nats_permissions : {
        user        = user
        password    = var.nats_passwords[user]
        permissions = permissions
      }]
    }
  })
}
