//! The GitHub REST API (`api.github.com`), as far as attribution needs it:
//! the exchange of a GitHub OAuth token for a Copilot session token, and
//! `/user` and `/copilot_internal/user` (what the Copilot CLI asks), which
//! name the account behind an OAuth token.

use super::{Http, lowered, segments};
use crate::core::{Operation, Service};

/// The operation that mints Copilot session tokens.
pub(crate) const COPILOT_TOKEN: &str = "github.copilot.token";
/// `GET /user`: the signed-in account.
pub(crate) const USER: &str = "github.user";
/// `GET /copilot_internal/user`: the signed-in account and its Copilot
/// plan (`login`, `endpoints.api`).
pub(crate) const COPILOT_USER: &str = "github.copilot.user";

pub(super) fn classify(verb: Http, path: &str) -> Operation {
    let segs = segments(path);
    let lower = lowered(&segs);
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let name = match (lower.as_slice(), verb) {
        (["copilot_internal", "v2", "token"], Http::Get) => COPILOT_TOKEN,
        (["user"], Http::Get) => USER,
        (["copilot_internal", "user"], Http::Get) => COPILOT_USER,
        (_, Http::Get | Http::Head) => "github.read",
        _ => "github.write",
    };
    Operation::new(Service::Github, name)
}
