//! The go-plugin side of the plugin protocol: a loopback listener, a
//! self-signed server certificate that trusts only Terraform's client
//! certificate, the gRPC health service go-plugin polls, and the handshake
//! line. Written here rather than taken from a framework crate because the
//! ones on crates.io speak protocol 6.5, which has no write-only attributes.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use magma_protocol::tfplugin6::provider_server::ProviderServer;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::StreamExt;
use tonic::transport::Server;

mod controller {
    tonic::include_proto!("plugin");
}

/// go-plugin's controller: Terraform calls Shutdown when it is done with
/// the plugin, which then stops serving and exits.
struct Controller {
    stop: Arc<tokio::sync::watch::Sender<bool>>,
}

#[tonic::async_trait]
impl controller::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(
        &self,
        _: tonic::Request<controller::Empty>,
    ) -> Result<tonic::Response<controller::Empty>, tonic::Status> {
        let _ = self.stop.send(true);
        Ok(tonic::Response::new(controller::Empty {}))
    }
}

/// Terraform's go-plugin magic cookie value: a plugin started by anything
/// else refuses to run.
pub const MAGIC_COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

const CORE_PROTOCOL: u8 = 1;
const PLUGIN_PROTOCOL: u8 = 6;

/// Accepts exactly the certificate Terraform announced (an ECDSA P-521 key,
/// hence aws-lc-rs: ring does not verify P-521). go-plugin's client
/// certificate is a self-signed CA certificate, which WebPKI path building
/// refuses as an end entity; pinning its bytes is the stricter check anyway.
#[derive(Debug)]
struct PinnedClient {
    expected: CertificateDer<'static>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ClientCertVerifier for PinnedClient {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.expected.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the client certificate is not the one Terraform announced".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A server certificate for this run and the TLS settings that accept only
/// Terraform's client certificate.
fn tls(client_pem: &str) -> anyhow::Result<(rustls::ServerConfig, Vec<u8>)> {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .context("certificate parameters")?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(1);
    params.not_after = now + time::Duration::days(1);
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::OrganizationName, "Sluice");
    name.push(rcgen::DnType::CommonName, "localhost");
    params.distinguished_name = name;
    // go-plugin's client pins this certificate as its only root: it has to
    // be a CA certificate for that.
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
        rcgen::KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .context("generating the server key")?;
    let certificate = params
        .self_signed(&key)
        .context("signing the server certificate")?;
    let expected = CertificateDer::from_pem_slice(client_pem.as_bytes())
        .context("PLUGIN_CLIENT_CERT is not a PEM certificate")?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_client_cert_verifier(Arc::new(PinnedClient { expected, provider }))
        .with_single_cert(
            vec![certificate.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .context("the server certificate")?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok((config, certificate.der().to_vec()))
}

pub async fn serve() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .context("listening on a loopback port")?;
    let address = listener.local_addr().context("the listener's address")?;

    let (health_reporter, health) = tonic_health::server::health_reporter();
    // go-plugin asks the health service about the service named "plugin".
    health_reporter
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;

    let provider = crate::provider::SluiceProvider::default();
    let shutdown = provider.shutdown_signal();
    let controller = Controller {
        stop: provider.stopper(),
    };
    let router = Server::builder()
        .add_service(health)
        .add_service(controller::grpc_controller_server::GrpcControllerServer::new(controller))
        .add_service(ProviderServer::new(provider));
    let client_pem = std::env::var("PLUGIN_CLIENT_CERT").unwrap_or_default();
    let tcp = TcpListenerStream::new(listener);
    let (serving, announced_certificate) = if client_pem.trim().is_empty() {
        // Without automatic mTLS (TF_REATTACH_PROVIDERS debugging), plain
        // gRPC on loopback, as go-plugin expects.
        let serving = router.serve_with_incoming_shutdown(tcp, shutdown);
        (futures_boxed(serving), String::new())
    } else {
        let (config, der) = tls(&client_pem)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let incoming = tcp
            .then(move |connection| {
                let acceptor = acceptor.clone();
                async move { acceptor.accept(connection?).await }
            })
            .filter(|handshake| match handshake {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "a TLS handshake failed");
                    false
                }
            });
        let serving = router.serve_with_incoming_shutdown(incoming, shutdown);
        (futures_boxed(serving), STANDARD_NO_PAD.encode(der))
    };

    // Terraform waits for this line before it connects.
    println!("{CORE_PROTOCOL}|{PLUGIN_PROTOCOL}|tcp|{address}|grpc|{announced_certificate}");
    serving.await.context("the gRPC server stopped")
}

type Serving = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<(), tonic::transport::Error>> + Send>,
>;

fn futures_boxed(
    serving: impl std::future::Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
) -> Serving {
    Box::pin(serving)
}
