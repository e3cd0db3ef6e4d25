//! Who a uid is: user names and group membership from `/etc/passwd` and
//! `/etc/group` text (parsed here; no libc), and whether that person is in
//! `approval.approvers`. The uid itself always comes from the kernel
//! (SO_PEERCRED), never from what a client says.

use std::collections::HashMap;

use serde::Serialize;

/// Where the user database is read from on each decision, so group
/// changes take effect without a restart.
const PASSWD: &str = "/etc/passwd";
const GROUP: &str = "/etc/group";

/// A user as the files describe them.
#[derive(Clone, Debug, PartialEq, Eq)]
struct User {
    name: String,
    gid: u32,
}

/// A group: its id and its supplementary members (by name).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Group {
    gid: u32,
    members: Vec<String>,
}

/// Parsed `/etc/passwd` and `/etc/group`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserDb {
    users: HashMap<u32, User>,
    groups: HashMap<String, Group>,
}

impl UserDb {
    /// Parses the two files' text; malformed lines are skipped (they name
    /// nobody, so they cannot grant anything).
    pub fn parse(passwd: &str, group: &str) -> Self {
        let mut users = HashMap::new();
        for line in passwd.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split(':').collect();
            if let [name, _, uid, gid, ..] = f[..]
                && let (Ok(uid), Ok(gid)) = (uid.parse(), gid.parse())
                && !name.is_empty()
            {
                // The first entry for a uid wins, as getpwuid(3) does.
                users.entry(uid).or_insert(User {
                    name: name.to_owned(),
                    gid,
                });
            }
        }
        let mut groups = HashMap::new();
        for line in group.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split(':').collect();
            if let [name, _, gid, members] = f[..]
                && let Ok(gid) = gid.parse()
                && !name.is_empty()
            {
                let members = members
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect();
                groups
                    .entry(name.to_owned())
                    .or_insert(Group { gid, members });
            }
        }
        Self { users, groups }
    }

    /// Reads the system's files.
    pub fn system() -> std::io::Result<Self> {
        Ok(Self::parse(
            &std::fs::read_to_string(PASSWD)?,
            &std::fs::read_to_string(GROUP)?,
        ))
    }

    /// The name of `uid`, if the files know it.
    pub fn user_name(&self, uid: u32) -> Option<&str> {
        self.users.get(&uid).map(|u| u.name.as_str())
    }

    /// Whether `uid` belongs to group `name`: as its primary group or as a
    /// listed member.
    pub fn in_group(&self, uid: u32, name: &str) -> bool {
        let (Some(user), Some(group)) = (self.users.get(&uid), self.groups.get(name)) else {
            return false;
        };
        user.gid == group.gid || group.members.contains(&user.name)
    }

    /// The gid of group `name` (a number is taken as is).
    pub fn group_id(&self, name: &str) -> Option<u32> {
        name.parse()
            .ok()
            .or_else(|| self.groups.get(name).map(|g| g.gid))
    }
}

/// Whoever acted through the admin socket; `by` in approval records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Approver {
    /// From the kernel (SO_PEERCRED), not from the client.
    pub uid: u32,
    /// From `/etc/passwd`; absent when the uid has no entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl Approver {
    pub fn new(uid: u32, db: &UserDb) -> Self {
        Self {
            uid,
            user: db.user_name(uid).map(str::to_owned),
        }
    }

    /// `alice (uid 1000)`, or `uid 1000` when unnamed.
    pub fn describe(&self) -> String {
        match &self.user {
            Some(u) => format!("{u} (uid {})", self.uid),
            None => format!("uid {}", self.uid),
        }
    }
}

/// `approval.approvers`: user names and `group:NAME` entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Approvers {
    users: Vec<String>,
    groups: Vec<String>,
}

impl Approvers {
    pub fn new(entries: &[String]) -> Self {
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
    pub fn admits(&self, uid: u32, db: &UserDb) -> bool {
        let Some(name) = db.user_name(uid) else {
            return false;
        };
        self.users.iter().any(|u| u == name) || self.groups.iter().any(|g| db.in_group(uid, g))
    }
}
