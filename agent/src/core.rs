//! The shared vocabulary under every stage: who called (process, identity),
//! what was asked (operation), what was decided (decision, approval
//! outcome), what masking found, the addresses on the data path, and the
//! audit record shapes. It depends on no stage; every stage may depend on
//! it (`tests/layers.rs` keeps it so).

pub(crate) mod addrs;
mod backoff;
mod decision;
mod findings;
mod glob;
mod identity;
mod operation;
mod process;
pub(crate) mod record;
mod sync;
mod text;

pub(crate) use backoff::{Backoff, new_error};
pub(crate) use decision::{Action, Approver, Decision, MAX_GRANT, Outcome, ResponseMasking};
pub(crate) use findings::Findings;
pub use glob::Glob;
pub(crate) use identity::{CredentialKind, GithubInfo, Identity, SasInfo};
pub(crate) use operation::{KubeRef, KubeVerb, Operation, Service};
pub(crate) use process::{Agent, Image};
pub use process::{CiJob, ProcessInfo};
pub(crate) use sync::{lock, read_lock, write_lock};
pub(crate) use text::{hex, percent_decode, truncate};
