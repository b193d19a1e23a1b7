//! The decoder of a pipe's format (`sluice_registry::pipe`), with its
//! errors as a run's: a registry that cannot be asked is retried, a format
//! that cannot work fails the replica.

use std::sync::Arc;

use sluice_formats::RowPlan;
use sluice_model::{EgressPolicy, Source};
use sluice_registry::pipe::{FormatError, PipeDecoder};

use crate::replica::RunError;

pub async fn decoder(
    source: &Source,
    plan: RowPlan,
    egress: &Arc<EgressPolicy>,
    evolve: bool,
) -> Result<PipeDecoder, RunError> {
    sluice_registry::pipe::decoder(source, plan, Some(egress.clone()), evolve)
        .await
        .map_err(|e| match e {
            FormatError::Transient(m) => RunError::Source(format!("schema registry: {m}")),
            FormatError::Permanent(m) => RunError::Permanent(m),
        })
}
