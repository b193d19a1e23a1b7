# A Kinesis stream of JSON clicks into a table Sluice creates.
# terraform apply -var clickhouse_url=... -var stream=... -var region=...

terraform {
  required_providers {
    sluice = { source = "sluice/sluice" }
  }
}

provider "sluice" {}

variable "clickhouse_url" { type = string }
variable "clickhouse_database" {
  type    = string
  default = "default"
}
variable "stream" { type = string }
variable "region" { type = string }
variable "kinesis_endpoint" {
  description = "Only for emulators and VPC endpoints."
  type        = string
  default     = null
}
variable "aws_access_key_id" { type = string }
variable "aws_secret_access_key" {
  type      = string
  sensitive = true
}

resource "sluice_destination" "analytics" {
  name     = "analytics"
  url      = var.clickhouse_url
  database = var.clickhouse_database
}

resource "sluice_pipe" "clicks" {
  name = "clicks"

  source = {
    kinesis = {
      stream_name   = var.stream
      region        = var.region
      endpoint      = var.kinesis_endpoint
      iterator_type = "TRIM_HORIZON"
      access_key = {
        access_key_id = var.aws_access_key_id
        secret_key_wo = var.aws_secret_access_key
      }
    }
  }
  # Bump to send the write-only credentials again (rotation).
  secrets_version = 1

  destination = {
    destination_id   = sluice_destination.analytics.id
    table            = "clicks"
    managed_table    = true
    table_definition = { sorting_key = ["n"] }
    columns = [
      { name = "n", type = "Int64" },
      { name = "sequence_number", type = "String" },
    ]
  }
  field_mappings = [{ source_field = "_sequence_number", destination_field = "sequence_number" }]
}

output "pipe_id" { value = sluice_pipe.clicks.id }
