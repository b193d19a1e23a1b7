//! A Kinesis client configured from the pipe: region, endpoint override,
//! an IAM user's access key or an IAM role assumed through STS.

use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use sluice_model::{KinesisAuthentication, KinesisSource};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the pipe's Kinesis credentials are incomplete: {0}")]
pub struct ConfigError(pub String);

fn access_key(source: &KinesisSource) -> Option<Credentials> {
    let key = source.access_key.as_ref()?;
    let secret = key.secret_key.as_ref()?;
    Some(Credentials::new(
        key.access_key_id.clone(),
        secret.expose().to_owned(),
        None,
        None,
        "sluice-pipe",
    ))
}

/// `session` names the role session (visible in the account's CloudTrail):
/// the pipe and replica it reads for.
pub async fn client(
    source: &KinesisSource,
    session: &str,
) -> Result<aws_sdk_kinesis::Client, ConfigError> {
    let region = Region::new(source.region.clone());
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region.clone());
    match source.authentication {
        KinesisAuthentication::IamUser => {
            let credentials = access_key(source).ok_or_else(|| {
                ConfigError("IAM_USER needs an access key id and secret key".into())
            })?;
            loader = loader.credentials_provider(credentials);
        }
        KinesisAuthentication::IamRole => {
            let role = source
                .iam_role
                .clone()
                .ok_or_else(|| ConfigError("IAM_ROLE needs a role ARN".into()))?;
            let mut builder = AssumeRoleProvider::builder(role)
                .session_name(session)
                .region(region);
            if let Some(external_id) = &source.external_id {
                builder = builder.external_id(external_id);
            }
            // Without an access key of its own, the pipe assumes the role
            // with the worker's credentials (instance profile, pod identity).
            let provider = match access_key(source) {
                Some(base) => builder.build_from_provider(base).await,
                None => builder.build().await,
            };
            loader = loader.credentials_provider(SharedCredentialsProvider::new(provider));
        }
    }
    if let Some(endpoint) = &source.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let config = loader.load().await;
    Ok(aws_sdk_kinesis::Client::new(&config))
}
