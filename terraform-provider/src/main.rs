//! `terraform-provider-sluice`: Sluice destinations and pipes as Terraform
//! resources, over plugin protocol 6.
//!
//! Terraform starts the binary, which answers the go-plugin handshake on
//! stdout (`core|protocol|tcp|address|grpc|server certificate`) and serves
//! gRPC over mutual TLS: Terraform's client certificate comes in
//! `PLUGIN_CLIENT_CERT`, ours goes back in the handshake line.

mod client;
mod cty;
mod handshake;
mod provider;
mod resources;
mod schema;

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::var("TF_PLUGIN_MAGIC_COOKIE").as_deref() != Ok(handshake::MAGIC_COOKIE) {
        eprintln!(
            "This is a Terraform provider plugin: Terraform runs it. Configure it in a \
             terraform block (source = \"sluice/sluice\") or a CLI configuration's dev_overrides."
        );
        std::process::exit(1);
    }
    // Two TLS backends are linked in (tonic's and reqwest's choices); pick
    // aws-lc-rs, which verifies go-plugin's P-521 client certificate.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // Terraform reads the handshake from stdout and logs stderr; logs go to
    // stderr so they show with TF_LOG.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_PROVIDER_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    handshake::serve()
        .await
        .context("serving the provider to Terraform")
}
