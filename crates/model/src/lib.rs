//! The vocabulary every Sluice process shares: what a pipe and a destination
//! are, which values are valid, how big a replica is and which state changes
//! are allowed. Nothing here performs I/O, so all of it is tested without a
//! server.

pub mod autoscale;
pub mod batching;
pub mod destination;
pub mod egress;
pub mod format;
pub mod placement;
pub mod secret;
pub mod settings;
pub mod size;
pub mod spec;
pub mod state;
pub mod validate;

pub use destination::{DestinationPatch, DestinationSpec};
pub use egress::{EgressDenied, EgressPolicy};
pub use secret::{Secret, SecretBag};
pub use settings::PipeSettings;
pub use size::ReplicaSize;
pub use spec::*;
pub use state::{Command, DesiredState, InvalidTransition, Observation, PipeState, Transition};
pub use validate::{FieldError, Validation};
