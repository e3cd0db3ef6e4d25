//! Who may decide on held requests: `approval.approvers` (user names and
//! `group:NAME`) checked against the user database ([`crate::users`]).

use crate::core::Approver;
use crate::users::UserDb;

impl Approver {
    pub(crate) fn new(uid: u32, db: &UserDb) -> Self {
        Self {
            uid,
            user: db.user_name(uid),
        }
    }

    /// `alice (uid 1000)`, or `uid 1000` when unnamed.
    pub(crate) fn describe(&self) -> String {
        match &self.user {
            Some(u) => format!("{u} (uid {})", self.uid),
            None => format!("uid {}", self.uid),
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
