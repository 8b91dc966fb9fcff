variable "kubeconfig_path" {
  description = "Kubeconfig of the department's cluster."
  type        = string
  default     = "~/.kube/config"
}

variable "kubeconfig_context" {
  description = "Context of the kubeconfig to install into (null: the current one)."
  type        = string
  default     = null
}

variable "namespace" {
  description = "Namespace of Vigie, its NATS cluster and its Postgres cluster."
  type        = string
  default     = "vigie"
}

variable "department_code" {
  description = "INSEE code of the département running the centre (e.g. 95)."
  type        = string
  validation {
    condition     = can(regex("^([0-9]{2,3}|2A|2B)$", var.department_code))
    error_message = "department_code is a département code such as 95, 2A or 971."
  }
}

variable "image_repository" {
  description = "Repository of the Vigie image (infra/docker/Dockerfile), in the department's registry."
  type        = string
}

variable "image_digest" {
  description = "sha256 digest of the Vigie image to run: pods pull by digest, never by a moving tag."
  type        = string
  validation {
    condition     = can(regex("^sha256:[0-9a-f]{64}$", var.image_digest))
    error_message = "image_digest is sha256: followed by 64 hexadecimal digits."
  }
}

variable "gpu_image_repository" {
  description = "Repository of the DeepStream detector image (infra/docker/Dockerfile.deepstream)."
  type        = string
}

variable "gpu_image_digest" {
  description = "sha256 digest of the DeepStream detector image."
  type        = string
  validation {
    condition     = can(regex("^sha256:[0-9a-f]{64}$", var.gpu_image_digest))
    error_message = "gpu_image_digest is sha256: followed by 64 hexadecimal digits."
  }
}

variable "public_host" {
  description = "Host name of the API and the console (HTTPS, certificate from cert-manager)."
  type        = string
}

variable "live_host" {
  description = "Host name of the live-video gateway (WSS)."
  type        = string
}

variable "media_host" {
  description = "Host name browsers reach the object store at: presigned links to clips and exports name it."
  type        = string
}

variable "trusted_proxies" {
  description = "CIDRs of the load balancers in front of the ingress (they set X-Forwarded-For)."
  type        = list(string)
}

variable "camera_cidrs" {
  description = "Networks of the cameras (RTSP), reached by the recorders, the detectors and the live gateway."
  type        = list(string)
}

variable "oidc_issuer" {
  description = "External identity provider (ProConnect, Keycloak); empty disables federated sign-in."
  type        = string
  default     = ""
}

variable "oidc_client_id" {
  description = "Client id registered with the identity provider (its secret is in the secret store)."
  type        = string
  default     = ""
}

variable "detector_backend" {
  description = "Detector of the GPU nodes: deepstream (NVIDIA DeepStream) or portable (onnxruntime, CUDA when present)."
  type        = string
  default     = "deepstream"
  validation {
    condition     = contains(["deepstream", "portable"], var.detector_backend)
    error_message = "detector_backend is deepstream or portable."
  }
}

variable "model_path" {
  description = "Path of the detector's ONNX model inside the models volume (mounted at /models)."
  type        = string
  default     = "/models/detector.onnx"
}

variable "model_labels_path" {
  description = "Path of the model's labels file inside the models volume."
  type        = string
  default     = "/models/detector.labels.txt"
}

variable "models_volume_claim" {
  description = "PersistentVolumeClaim (ReadOnlyMany) holding the detector model, in the Vigie namespace."
  type        = string
  default     = "vigie-models"
}

variable "secret_store" {
  description = "ClusterSecretStore of external-secrets holding Vigie's secrets (Vault, OpenBao, a cloud KMS...)."
  type        = string
  default     = "vigie-secrets"
}

variable "secret_key" {
  description = "Key of Vigie's secrets in that store; its properties are listed in infra/terraform/README.md."
  type        = string
  default     = "vigie/production"
}

variable "object_store" {
  description = "rook-ceph: an RGW object store in the cluster; external: a managed sovereign S3 with object lock."
  type        = string
  default     = "rook-ceph"
  validation {
    condition     = contains(["rook-ceph", "external"], var.object_store)
    error_message = "object_store is rook-ceph or external."
  }
}

variable "external_object_store_endpoint" {
  description = "host:port of the managed S3 (object_store = external); it must support object lock."
  type        = string
  default     = ""
}

variable "postgres_storage_size" {
  description = "Volume of each of the three Postgres instances."
  type        = string
  default     = "500Gi"
}

variable "postgres_backup_bucket" {
  description = "S3 destination of CloudNativePG's base backups and WAL archive (s3://bucket/path)."
  type        = string
}

variable "postgres_backup_endpoint" {
  description = "HTTPS endpoint of the S3 holding the Postgres backups (another failure domain than the cluster)."
  type        = string
}

variable "nats_storage_size" {
  description = "JetStream file store of each of the three NATS nodes."
  type        = string
  default     = "100Gi"
}

variable "cluster_issuer" {
  description = "cert-manager ClusterIssuer that signs the public certificates (ACME or the department's CA)."
  type        = string
  default     = "vigie-public"
}

variable "gpu_detectors" {
  description = "Run detectors on the GPU nodes (DeepStream image); false for a cluster without GPUs."
  type        = bool
  default     = true
}

variable "cpu_detectors" {
  description = "Run detectors on CPU nodes (the portable onnxruntime detector)."
  type        = bool
  default     = true
}

variable "internal_issuer" {
  description = "cert-manager ClusterIssuer of the department's internal CA (the object store's internal certificate)."
  type        = string
  default     = "vigie-internal-ca"
}

variable "internal_ca_config_map" {
  description = "ConfigMap (key ca.crt) in the Vigie namespace holding that CA, trusted by the processes."
  type        = string
  default     = "vigie-internal-ca"
}
