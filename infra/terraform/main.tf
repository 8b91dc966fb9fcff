locals {
  # Least privilege on the bus: one NATS user per process, with the permissions of core/nats_auth.py (the same
  # table, exported to nats-permissions.json and checked equal by tests/integration/test_bus_permissions.py).
  nats_permissions = jsondecode(file("${path.module}/nats-permissions.json"))
  # Each user's password comes from the secret store (the vigie-nats-users Secret the chart's ExternalSecret
  # writes), read by nats-server from its environment: never in this state or in a values file.
  nats_password_env = { for user in concat(keys(local.nats_permissions), ["admin"]) : user => "NATS_PASSWORD_${upper(user)}" }

  object_store_endpoint = var.object_store == "rook-ceph" ? "rook-ceph-rgw-vigie.rook-ceph.svc:443" : var.external_object_store_endpoint

  # Every production setting of the processes (core/settings.py and each process's own settings); the secret ones
  # are in the secret store (see the chart's secretEnv). tests/unit/test_infra.py checks each name is a setting.
  vigie_config = {
    VIGIE_ENVIRONMENT                 = "production"
    VIGIE_DEPARTMENT_CODE             = var.department_code
    VIGIE_LOG_LEVEL                   = "INFO"
    VIGIE_DATABASE__HOST              = "vigie-pg-rw"
    VIGIE_DATABASE__PORT              = "5432"
    VIGIE_DATABASE__NAME              = "vigie"
    VIGIE_DATABASE__EMBEDDED_FALLBACK = "false"
    VIGIE_NATS__URL                   = "nats://nats.${var.namespace}.svc:4222"
    VIGIE_NATS__EMBEDDED              = "false"
    VIGIE_NATS__STREAM_REPLICAS       = "3"
    VIGIE_OBJECTSTORE_BACKEND         = "s3"
    VIGIE_OBJECTSTORE_ENDPOINT        = local.object_store_endpoint
    VIGIE_OBJECTSTORE_PUBLIC_ENDPOINT = var.media_host
    VIGIE_OBJECTSTORE_SECURE          = "true"
    # The internal CA of the in-cluster gateway; null removes the chart's default (a managed S3's public certificate).
    VIGIE_OBJECTSTORE_CA_FILE = var.object_store == "rook-ceph" ? "/etc/vigie/ca/ca.crt" : null
    VIGIE_AUTH__ISSUER        = "https://${var.public_host}"
    VIGIE_API__PUBLIC_URL     = "https://${var.public_host}"
    # Only these peers are believed when they name the client in X-Forwarded-For: without them every sign-in would
    # count against the load balancer's own address.
    VIGIE_API__TRUSTED_PROXIES  = jsonencode(var.trusted_proxies)
    VIGIE_OIDC__ISSUER          = var.oidc_issuer
    VIGIE_OIDC__CLIENT_ID       = var.oidc_client_id
    VIGIE_OIDC__REDIRECT_URI    = var.oidc_issuer == "" ? "" : "https://${var.public_host}/auth/oidc/callback"
    VIGIE_LIVE_PUBLIC_URL       = "wss://${var.live_host}"
    VIGIE_LIVE_ALLOWED_ORIGINS  = jsonencode(["https://${var.public_host}"])
    VIGIE_INFERENCE_MODEL_PATH  = var.model_path
    VIGIE_INFERENCE_LABELS_PATH = var.model_labels_path
  }
}

# --- certificates, secrets, GPUs, monitoring: the operators Vigie relies on

resource "helm_release" "cert_manager" {
  name             = "cert-manager"
  namespace        = "cert-manager"
  create_namespace = true
  repository       = "https://charts.jetstack.io"
  chart            = "cert-manager"
  version          = "v1.19.1"
  values = [yamlencode({
    crds       = { enabled = true }
    prometheus = { servicemonitor = { enabled = true, labels = { release = "kube-prometheus-stack" } } }
  })]
}

resource "helm_release" "external_secrets" {
  name             = "external-secrets"
  namespace        = "external-secrets"
  create_namespace = true
  repository       = "https://charts.external-secrets.io"
  chart            = "external-secrets"
  version          = "0.20.4"
  values           = [yamlencode({ installCRDs = true })]
}

resource "helm_release" "kube_prometheus_stack" {
  name             = "kube-prometheus-stack"
  namespace        = "monitoring"
  create_namespace = true
  repository       = "https://prometheus-community.github.io/helm-charts"
  chart            = "kube-prometheus-stack"
  version          = "79.5.0"
  values = [yamlencode({
    prometheus = { prometheusSpec = {
      retention = "30d"
      # Vigie's ServiceMonitors and PrometheusRule carry release: kube-prometheus-stack.
      ruleSelector           = { matchLabels = { release = "kube-prometheus-stack" } }
      serviceMonitorSelector = { matchLabels = { release = "kube-prometheus-stack" } }
    } }
    # The Grafana sidecar loads Vigie's dashboards (ConfigMaps labelled grafana_dashboard).
    grafana = { sidecar = { dashboards = { enabled = true, label = "grafana_dashboard", searchNamespace = "ALL" } } }
  })]
}

resource "helm_release" "gpu_operator" {
  name             = "gpu-operator"
  namespace        = "gpu-operator"
  create_namespace = true
  repository       = "https://helm.ngc.nvidia.com/nvidia"
  chart            = "gpu-operator"
  version          = "v25.10.0"
  values = [yamlencode({
    # Driver, container toolkit and device plugin on the GPU nodes; DCGM metrics to Prometheus.
    dcgmExporter = { serviceMonitor = { enabled = true, additionalLabels = { release = "kube-prometheus-stack" } } }
  })]
  depends_on = [helm_release.kube_prometheus_stack]
}

# --- NATS JetStream: three nodes, file storage, every write synced before its ack

resource "helm_release" "nats" {
  name             = "nats"
  namespace        = var.namespace
  create_namespace = true
  repository       = "https://nats-io.github.io/k8s/helm/charts"
  chart            = "nats"
  version          = "1.3.16"
  # The users' passwords come from the vigie-nats-users Secret, written once Vigie's chart is installed: the pods
  # wait for it.
  wait = false
  values = [yamlencode({
    config = {
      cluster = { enabled = true, replicas = 3 }
      jetstream = {
        enabled   = true
        fileStore = { enabled = true, pvc = { enabled = true, size = var.nats_storage_size } }
        merge     = { sync_interval = "always" }
      }
      merge = {
        authorization = {
          users = concat([for user, permissions in local.nats_permissions : {
            user = user
            # A raw value (<< >>): nats-server reads the variable from its environment.
            password    = format("<< $%s >>", local.nats_password_env[user])
            permissions = permissions
            }], [{
            # `vigie bus provision` (the chart's hook Job): declares streams and consumers; no process uses it.
            user     = "admin"
            password = format("<< $%s >>", local.nats_password_env["admin"])
          }])
        }
      }
    }
    container = {
      env = { for user, variable in local.nats_password_env : variable => {
        valueFrom = { secretKeyRef = { name = "vigie-nats-users", key = "nats_password_${user}" } }
      } }
    }
    promExporter = { enabled = true, podMonitor = { enabled = true, merge = { metadata = { labels = { release = "kube-prometheus-stack" } } } } }
  })]
}

# --- Postgres: CloudNativePG, a primary and two standbys, base backups and WAL to S3

resource "helm_release" "cnpg_operator" {
  name             = "cnpg"
  namespace        = "cnpg-system"
  create_namespace = true
  repository       = "https://cloudnative-pg.github.io/charts"
  chart            = "cloudnative-pg"
  version          = "0.26.1"
}

resource "helm_release" "postgres" {
  name       = "vigie-pg"
  namespace  = var.namespace
  repository = "https://cloudnative-pg.github.io/charts"
  chart      = "cluster"
  version    = "0.3.1"
  values = [yamlencode({
    fullnameOverride = "vigie-pg"
    type             = "postgresql"
    mode             = "standalone"
    version          = { postgresql = "16" }
    cluster = {
      instances = 3
      storage   = { size = var.postgres_storage_size }
      # `vigie migrate` creates the platform's four roles with the superuser (VIGIE_DATABASE__ADMIN_DSN).
      enableSuperuserAccess = true
      # A commit waits for one standby: a failover loses no acknowledged write.
      postgresql = { synchronous = { method = "any", number = 1 } }
      monitoring = { enabled = true, podMonitor = { enabled = true } }
    }
    backups = {
      enabled         = true
      provider        = "s3"
      endpointURL     = var.postgres_backup_endpoint
      destinationPath = var.postgres_backup_bucket
      # The S3 credentials of the backups, written by external-secrets (property postgres_backup_*).
      secret          = { create = false, name = "vigie-pg-backup-s3" }
      wal             = { compression = "gzip", encryption = "AES256" }
      data            = { compression = "gzip", encryption = "AES256" }
      retentionPolicy = "30d"
      scheduledBackups = [{
        name                 = "daily"
        schedule             = "0 0 2 * * *"
        backupOwnerReference = "self"
        method               = "barmanObjectStore"
      }]
    }
  })]
  depends_on = [helm_release.cnpg_operator]
}

# --- the object store: Ceph RGW (rook-ceph), erasure coded, buckets created by Vigie with object lock

resource "helm_release" "rook_ceph" {
  count            = var.object_store == "rook-ceph" ? 1 : 0
  name             = "rook-ceph"
  namespace        = "rook-ceph"
  create_namespace = true
  repository       = "https://charts.rook.io/release"
  chart            = "rook-ceph"
  version          = "v1.18.6"
}

resource "helm_release" "rook_ceph_cluster" {
  count      = var.object_store == "rook-ceph" ? 1 : 0
  name       = "rook-ceph-cluster"
  namespace  = "rook-ceph"
  repository = "https://charts.rook.io/release"
  chart      = "rook-ceph-cluster"
  version    = "v1.18.6"
  values = [yamlencode({
    operatorNamespace = "rook-ceph"
    cephBlockPools    = []
    cephFileSystems   = []
    cephObjectStores = [{
      name = "vigie"
      spec = {
        metadataPool = { failureDomain = "host", replicated = { size = 3 } }
        # 4 data + 2 parity chunks: 1.5 times the data on disk, any two hosts lost (docs/capacity.md).
        dataPool              = { failureDomain = "host", erasureCoded = { dataChunks = 4, codingChunks = 2 } }
        preservePoolsOnDelete = true
        gateway = {
          port       = 80
          securePort = 443
          instances  = 2
          # cert-manager issues the gateway's certificate (the Secret rook-ceph-rgw-vigie-tls).
          sslCertificateRef = "rook-ceph-rgw-vigie-tls"
        }
      }
      storageClass = { enabled = false }
    }]
  })]
  depends_on = [helm_release.rook_ceph]
}

# --- Vigie

resource "helm_release" "vigie" {
  name      = "vigie"
  namespace = var.namespace
  chart     = "${path.module}/../helm/vigie"
  values = [yamlencode({
    image    = { repository = var.image_repository, digest = var.image_digest }
    gpuImage = { repository = var.gpu_image_repository, digest = var.gpu_image_digest }
    config   = local.vigie_config
    externalSecrets = {
      storeName = var.secret_store
      remoteKey = var.secret_key
    }
    models = { persistentVolumeClaim = var.models_volume_claim }
    processes = {
      inference       = { enabled = var.cpu_detectors }
      "inference-gpu" = { enabled = var.gpu_detectors, env = { VIGIE_INFERENCE_BACKEND = var.detector_backend } }
    }
    objectStore = {
      certificate = var.object_store == "rook-ceph"
      issuer      = var.internal_issuer
      caConfigMap = var.internal_ca_config_map
      mediaHost   = var.media_host
    }
    ingress = {
      enabled       = true
      clusterIssuer = var.cluster_issuer
      apiHost       = var.public_host
      liveHost      = var.live_host
    }
    networkPolicy = {
      natsNamespace        = var.namespace
      objectStoreNamespace = var.object_store == "rook-ceph" ? "rook-ceph" : "none"
      cameraCidrs          = var.camera_cidrs
    }
  })]
  depends_on = [helm_release.nats, helm_release.postgres, helm_release.external_secrets, helm_release.cert_manager,
  helm_release.kube_prometheus_stack]
}
