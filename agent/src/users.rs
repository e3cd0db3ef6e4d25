//! Who a uid is: user names and group membership from `/etc/passwd` and
//! `/etc/group` text (parsed here; no libc). Approvals decide with it (the
//! uid always from the kernel, never from what a client says); records name
//! the local user behind a process with [`name_of`].

use crate::core::lock;
use std::collections::HashMap;

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
pub(crate) struct UserDb {
    users: HashMap<u32, User>,
    groups: HashMap<String, Group>,
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
        Self { users, groups }
    }

    /// Reads the system's files.
    pub(crate) fn system() -> std::io::Result<Self> {
        Ok(Self::parse(
            &std::fs::read_to_string(PASSWD)?,
            &std::fs::read_to_string(GROUP)?,
        ))
    }

    /// The name of `uid`, if the files know it.
    pub(crate) fn user_name(&self, uid: u32) -> Option<&str> {
        self.users.get(&uid).map(|u| u.name.as_str())
    }

    /// Whether `uid` belongs to group `name`: as its primary group or as a
    /// listed member.
    pub(crate) fn in_group(&self, uid: u32, name: &str) -> bool {
        let (Some(user), Some(group)) = (self.users.get(&uid), self.groups.get(name)) else {
            return false;
        };
        user.gid == group.gid || group.members.contains(&user.name)
    }

    /// The gid of group `name` (a number is taken as is).
    pub(crate) fn group_id(&self, name: &str) -> Option<u32> {
        name.parse()
            .ok()
            .or_else(|| self.groups.get(name).map(|g| g.gid))
    }
}

/// How long [`name_of`] trusts its copy of the user database.
const NAME_CACHE: std::time::Duration = std::time::Duration::from_secs(60);

/// The user name of `uid` for records (`process.user`), from a copy of the
/// system's files read at most once a minute. Blocking (it may read the
/// files): call from a blocking context, as process enrichment is.
pub(crate) fn name_of(uid: u32) -> Option<String> {
    use std::sync::Mutex;
    use std::time::Instant;
    static CACHE: Mutex<Option<(Instant, UserDb)>> = Mutex::new(None);
    let mut cache = lock(&CACHE);
    if cache
        .as_ref()
        .is_none_or(|(at, _)| at.elapsed() > NAME_CACHE)
    {
        // Unreadable files name nobody; the uid is recorded regardless.
        *cache = Some((Instant::now(), UserDb::system().unwrap_or_default()));
    }
    cache
        .as_ref()
        .and_then(|(_, db)| db.user_name(uid))
        .map(str::to_owned)
}
