//! The shared vocabulary under every stage: who called (process, identity),
//! what was asked (operation), what was decided (decision, approval
//! outcome), what masking found, the addresses on the data path, and the
//! audit record shapes. It depends on no stage; every stage may depend on
//! it (`tests/layers.rs` keeps it so).

pub mod addrs;
mod decision;
mod findings;
mod glob;
mod identity;
mod operation;
mod process;
pub mod record;
mod sync;
mod text;

pub use decision::{Action, Approver, Decision, Outcome, ResponseMasking};
pub use findings::Findings;
pub use glob::Glob;
pub use identity::{CredentialKind, GithubInfo, Identity, SasInfo};
pub use operation::{KubeRef, KubeVerb, Operation, Service};
pub use process::{Image, ProcessInfo};
pub use sync::{lock, read_lock, write_lock};
pub use text::{hex, truncate};
