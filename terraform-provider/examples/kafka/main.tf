# A Kafka topic of JSON orders into a table Sluice creates.
# terraform apply -var clickhouse_url=... -var kafka_brokers=... -var topic=...

terraform {
  required_providers {
    sluice = { source = "sluice/sluice" }
  }
}

# endpoint, api_key_id and api_key_secret come from SLUICE_ENDPOINT,
# SLUICE_API_KEY_ID and SLUICE_API_KEY_SECRET.
provider "sluice" {}

variable "clickhouse_url" { type = string }
variable "clickhouse_database" {
  type    = string
  default = "default"
}
variable "clickhouse_password" {
  type      = string
  default   = null
  sensitive = true
}
variable "kafka_brokers" { type = string }
variable "topic" { type = string }

resource "sluice_destination" "analytics" {
  name     = "analytics"
  url      = var.clickhouse_url
  database = var.clickhouse_database
  # Write-only: sent to Sluice, never stored in the Terraform state. Bump
  # the version to send a new password.
  password_wo         = var.clickhouse_password
  password_wo_version = 1
}

resource "sluice_pipe" "orders" {
  name        = "orders"
  description = "orders from the shop"

  source = {
    kafka = {
      brokers = var.kafka_brokers
      topics  = [var.topic]
      offset  = { strategy = "from_beginning" }
      # For a managed Kafka (Confluent Cloud, MSK, ...):
      # authentication = "PLAIN"
      # credentials    = { username = "...", password_wo = var.kafka_password }
    }
  }

  destination = {
    destination_id = sluice_destination.analytics.id
    table          = "orders"
    managed_table  = true
    table_definition = {
      engine      = "MergeTree"
      sorting_key = ["id"]
    }
    columns = [
      { name = "id", type = "Int64" },
      { name = "customer", type = "String" },
      { name = "offset", type = "Int64" },
    ]
  }

  # Columns filled from a differently named field or a virtual column.
  field_mappings = [
    { source_field = "customer.name", destination_field = "customer" },
    { source_field = "_offset", destination_field = "offset" },
  ]

  scaling = {
    replicas     = 1
    replica_size = "S"
    autoscaling  = { min_replicas = 1, max_replicas = 3 }
  }

  settings = {
    streaming_max_insert_wait_ms = 5000
    max_insert_rows              = 100000
  }
}

output "pipe_id" { value = sluice_pipe.orders.id }
output "pipe_state" { value = sluice_pipe.orders.state }
