output "api_url" {
  description = "Public URL of the API and the console."
  value       = "https://${var.public_host}"
}

output "live_url" {
  description = "Public URL of the live-video gateway."
  value       = "wss://${var.live_host}"
}

output "object_store_endpoint" {
  description = "The object store the processes use (internal endpoint)."
  value       = local.object_store_endpoint
}

output "nats_users" {
  description = "The NATS users configured on the JetStream cluster, one per process."
  value       = keys(local.nats_permissions)
}
