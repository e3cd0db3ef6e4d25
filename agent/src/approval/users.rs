//! Who may decide on held requests: `approval.approvers` (user names and
//! `group:NAME`) checked against the user database ([`crate::users`]).

use crate::core::Approver;
use crate::users::UserDb;

impl Approver {
    pub(crate) fn new(uid: u32, db: &UserDb) -> Self {
        Self {
            uid: Some(uid),
            user: db.user_name(uid),
            role: None,
            host: None,
        }
    }

    /// `alice (uid 1000)`, or `uid 1000` when unnamed; a fleet decision's
    /// `role approvers-sre (alice on laptop7)`.
    pub(crate) fn describe(&self) -> String {
        let user = self.user.as_deref().unwrap_or("?");
        match (&self.role, self.uid) {
            (Some(role), _) => format!(
                "role {role} ({user} on {})",
                self.host.as_deref().unwrap_or("?")
            ),
            (None, Some(uid)) if self.user.is_some() => format!("{user} (uid {uid})"),
            (None, Some(uid)) => format!("uid {uid}"),
            (None, None) => user.to_owned(),
        }
    }
}

/// `approval.approvers`: user names and `group:NAME` entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Approvers {
    users: Vec<String>,
    groups: Vec<String>,
}

impl Approvers {
    pub(crate) fn new(entries: &[String]) -> Self {
        let mut out = Self::default();
        for e in entries {
            match e.strip_prefix("group:") {
                Some(g) => out.groups.push(g.to_owned()),
                None => out.users.push(e.clone()),
            }
        }
        out
    }

    /// Whether `uid` may decide. A uid without a passwd entry has no name
    /// and so matches no entry; root is an approver only if listed, like
    /// anyone else.
    pub(crate) fn admits(&self, uid: u32, db: &UserDb) -> bool {
        let Some(name) = db.user_name(uid) else {
            return false;
        };
        self.users.contains(&name) || self.groups.iter().any(|g| db.in_group(uid, g))
    }
}
