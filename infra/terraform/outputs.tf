output "nats_users_file" {
  description = "The NATS users and their permissions, to include in every node of the JetStream cluster."
  value       = local_sensitive_file.nats_users.filename
}

output "env_files" {
  description = "Env files to install beside each process (python -m api | dvr | inference | alerts | mobile_push)."
  value = concat(
    [local_sensitive_file.api_env.filename],
    [for f in local_sensitive_file.recorder_env : f.filename],
    [for f in local_sensitive_file.worker_env : f.filename],
  )
}
