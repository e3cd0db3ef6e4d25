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

    /// Whether a person an OpenID Connect issuer signed in may decide (the
    /// fleet console): a user entry names their `preferred_username`/`upn`
    /// (compared without case, as Entra ID compares them) or their object
    /// id; a `group:` entry names a group object id of the token's
    /// `groups` claim.
    pub(crate) fn admits_claims(&self, names: &[&str], groups: &[String]) -> bool {
        let named = self.users.iter().any(|u| {
            names
                .iter()
                .any(|n| !n.is_empty() && u.eq_ignore_ascii_case(n))
        });
        named || self.groups.iter().any(|g| groups.contains(g))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_in_people_match_by_name_object_id_or_group() {
        let a = Approvers::new(&[
            "alice@contoso.test".into(),
            "0a1b2c3d-0000-4000-8000-000000000001".into(),
            "group:5b8e2f1a-9c3d-4e7f-a0b6-c1d2e3f4a5b6".into(),
        ]);
        assert!(a.admits_claims(&["Alice@Contoso.test", "x"], &[]));
        assert!(a.admits_claims(
            &["bob@contoso.test", "0a1b2c3d-0000-4000-8000-000000000001"],
            &[]
        ));
        assert!(a.admits_claims(
            &["carol@contoso.test"],
            &[
                "other".into(),
                "5b8e2f1a-9c3d-4e7f-a0b6-c1d2e3f4a5b6".into()
            ]
        ));
        assert!(!a.admits_claims(&["bob@contoso.test", "oid-bob"], &["other".into()]));
        // A group's name is not its object id, and an empty name matches
        // nothing.
        assert!(!a.admits_claims(&["5b8e2f1a-9c3d-4e7f-a0b6-c1d2e3f4a5b6"], &[]));
        assert!(!Approvers::new(&[String::new()]).admits_claims(&[""], &[]));
    }
}
