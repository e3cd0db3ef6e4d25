//! Who a uid is: user names and group membership through NSS (local
//! files, LDAP, SSSD, Active Directory alike, as `id` sees them), or from
//! given `/etc/passwd` and `/etc/group` text (tests, fuzzing). Approvals
//! decide with it (the uid always from the kernel, never from what a
//! client says); records name the local user behind a process with
//! [`name_of`]. NSS may ask a directory server: call from a blocking
//! context where a request waits.

use std::collections::HashMap;

use crate::core::lock;

/// A user as the files describe them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct User {
    name: String,
    gid: u32,
}

/// A group: its id and its supplementary members (by name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Group {
    gid: u32,
    members: Vec<String>,
}

/// Where users and groups are looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum UserDb {
    /// The system's NSS, asked at each question, so directory changes
    /// take effect without a restart.
    Nss,
    /// Parsed `passwd` and `group` text.
    Files {
        users: HashMap<u32, User>,
        groups: HashMap<String, Group>,
    },
}

impl Default for UserDb {
    fn default() -> Self {
        Self::Files {
            users: HashMap::new(),
            groups: HashMap::new(),
        }
    }
}

impl UserDb {
    /// Parses the two files' text; malformed lines are skipped (they name
    /// nobody, so they cannot grant anything).
    pub(crate) fn parse(passwd: &str, group: &str) -> Self {
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
        Self::Files { users, groups }
    }

    /// The system's users and groups.
    pub(crate) fn system() -> Self {
        Self::Nss
    }

    /// The name of `uid` and its primary group, if known. A lookup that
    /// fails (a directory down) knows nobody: nobody is then an approver.
    fn user(&self, uid: u32) -> Option<User> {
        match self {
            Self::Nss => match airlock_ebpf::user_by_uid(uid) {
                Ok(found) => found.map(|(name, gid)| User { name, gid }),
                Err(e) => {
                    tracing::warn!(uid, error = %e, "user lookup failed");
                    None
                }
            },
            Self::Files { users, .. } => users.get(&uid).cloned(),
        }
    }

    /// The name of `uid`, if known.
    pub(crate) fn user_name(&self, uid: u32) -> Option<String> {
        self.user(uid).map(|u| u.name)
    }

    /// Whether `uid` belongs to group `name`: as its primary group or as a
    /// member (through NSS: every group `id` lists for it).
    pub(crate) fn in_group(&self, uid: u32, name: &str) -> bool {
        let Some(user) = self.user(uid) else {
            return false;
        };
        match self {
            Self::Nss => {
                let Some(gid) = self.group_id(name) else {
                    return false;
                };
                user.gid == gid
                    || airlock_ebpf::group_ids_of(&user.name, user.gid)
                        .is_ok_and(|all| all.contains(&gid))
            }
            Self::Files { groups, .. } => groups
                .get(name)
                .is_some_and(|g| user.gid == g.gid || g.members.contains(&user.name)),
        }
    }

    /// The gid of group `name` (a number is taken as is).
    pub(crate) fn group_id(&self, name: &str) -> Option<u32> {
        if let Ok(gid) = name.parse() {
            return Some(gid);
        }
        match self {
            Self::Nss => airlock_ebpf::group_by_name(name).ok().flatten(),
            Self::Files { groups, .. } => groups.get(name).map(|g| g.gid),
        }
    }
}

/// How long [`name_of`] trusts a name it looked up.
const NAME_CACHE: std::time::Duration = std::time::Duration::from_secs(60);

/// The user name of `uid` for records (`process.user`), looked up at most
/// once a minute per uid. Blocking (NSS): call from a blocking context, as
/// process enrichment is.
pub(crate) fn name_of(uid: u32) -> Option<String> {
    use std::sync::Mutex;
    use std::time::Instant;
    /// uid → when it was looked up, and the name found.
    type Names = HashMap<u32, (Instant, Option<String>)>;
    static CACHE: Mutex<Option<Names>> = Mutex::new(None);
    let mut cache = lock(&CACHE);
    let names = cache.get_or_insert_with(HashMap::new);
    if let Some((at, name)) = names.get(&uid)
        && at.elapsed() < NAME_CACHE
    {
        return name.clone();
    }
    // Bounded by the uids seen within a minute; old entries go first.
    if names.len() > 4096 {
        names.retain(|_, (at, _)| at.elapsed() < NAME_CACHE);
    }
    // An unknown uid names nobody; the uid is recorded regardless.
    let name = UserDb::system().user_name(uid);
    names.insert(uid, (Instant::now(), name.clone()));
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nss_knows_root_and_its_group() {
        let db = UserDb::system();
        assert_eq!(db.user_name(0).as_deref(), Some("root"));
        assert_eq!(db.group_id("root"), Some(0));
        assert!(db.in_group(0, "root"));
        assert_eq!(db.group_id("no-such-group-airlock"), None);
        assert_eq!(db.user_name(4_000_000_000), None);
        assert_eq!(name_of(0).as_deref(), Some("root"));
    }
}
