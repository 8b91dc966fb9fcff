# Vigie deployment configuration: one env file per process, rendered from the department's sizing.
terraform {
  required_version = ">= 1.5"
  required_providers {
    local = {
      source  = "hashicorp/local"
      version = "~> 2.5"
    }
  }
}
