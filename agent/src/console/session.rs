//! Who is signed in: the one-time login token `airlock console` prints
//! (single-host mode) or the person the issuer signed in (fleet mode,
//! [`super::signin`]), the sessions they open (a cookie each) and every
//! session's CSRF token.
//! Tokens are 256 bits from the system's generator; what is kept of the
//! login and session tokens is their SHA-256, so a lookup's timing says
//! nothing about a token, and the CSRF token is compared in constant time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

use super::ConsoleError;
use super::oidc::Person;
use crate::core::lock;

/// How long the printed login link works: long enough to paste it, short
/// enough that one found in a scrollback later is dead.
pub(super) const LOGIN_TTL: Duration = Duration::from_secs(5 * 60);
/// How long a session lasts from its sign-in: a working day. Restarting
/// the console ends every session at once.
pub(super) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// What a request's cookie gives, when it names a live session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Session {
    /// Required in every form that decides.
    pub csrf: String,
    /// The outcome of this session's last decision, shown once.
    pub flash: Option<Flash>,
    /// Fleet mode: who signed in.
    pub person: Option<Person>,
}

/// A decision's outcome, for the page after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Flash {
    pub ok: bool,
    pub text: String,
}

#[derive(Debug)]
struct Open {
    csrf: String,
    until: Instant,
    flash: Option<Flash>,
    person: Option<Person>,
}

#[derive(Debug)]
pub(super) struct Sessions {
    rng: SystemRandom,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// SHA-256 of the login token and when it stops working; `None` once
    /// used.
    login: Option<([u8; 32], Instant)>,
    open: HashMap<[u8; 32], Open>,
}

impl Sessions {
    /// The store and its login token (hex), valid for [`LOGIN_TTL`].
    pub(super) fn new() -> Result<(Self, String), ConsoleError> {
        let rng = SystemRandom::new();
        let token = random(&rng)?;
        let state = State {
            login: Some((hash(&token), Instant::now() + LOGIN_TTL)),
            open: HashMap::new(),
        };
        Ok((
            Self {
                rng,
                state: Mutex::new(state),
            },
            token,
        ))
    }

    /// The store without a login token: fleet mode, where the issuer
    /// signs people in.
    pub(super) fn signed_in_elsewhere() -> Self {
        Self {
            rng: SystemRandom::new(),
            state: Mutex::default(),
        }
    }

    /// Spends the login token: a new session's cookie value, or `None`
    /// when `token` is not it, or it was used or has expired.
    pub(super) fn login(&self, token: &str) -> Result<Option<String>, ConsoleError> {
        {
            let mut st = lock(&self.state);
            let valid = st
                .login
                .is_some_and(|(h, until)| Instant::now() < until && same(&h, &hash(token)));
            if !valid {
                return Ok(None);
            }
            st.login = None;
        }
        self.open(None).map(Some)
    }

    /// A new session (for `person`, in fleet mode): its cookie value.
    pub(super) fn open(&self, person: Option<Person>) -> Result<String, ConsoleError> {
        let cookie = random(&self.rng)?;
        let csrf = random(&self.rng)?;
        lock(&self.state).open.insert(
            hash(&cookie),
            Open {
                csrf,
                until: Instant::now() + SESSION_TTL,
                flash: None,
                person,
            },
        );
        Ok(cookie)
    }

    /// Ends the session `cookie` names (signing out).
    pub(super) fn close(&self, cookie: &str) {
        lock(&self.state).open.remove(&hash(cookie));
    }

    /// The live session `cookie` names, its flash taken (shown once).
    pub(super) fn take(&self, cookie: &str) -> Option<Session> {
        self.with(cookie, |s| Session {
            csrf: s.csrf.clone(),
            flash: s.flash.take(),
            person: s.person.clone(),
        })
    }

    /// The live session `cookie` names, its flash left for the next page.
    pub(super) fn peek(&self, cookie: &str) -> Option<Session> {
        self.with(cookie, |s| Session {
            csrf: s.csrf.clone(),
            flash: s.flash.clone(),
            person: s.person.clone(),
        })
    }

    /// Whether `given` is the CSRF token of the session `cookie` names
    /// (compared in constant time).
    pub(super) fn csrf_ok(&self, cookie: &str, given: &str) -> bool {
        self.with(cookie, |s| same(s.csrf.as_bytes(), given.as_bytes()))
            .unwrap_or(false)
    }

    /// Keeps `flash` for the session's next page.
    pub(super) fn flash(&self, cookie: &str, flash: Flash) {
        self.with(cookie, |s| s.flash = Some(flash));
    }

    fn with<T>(&self, cookie: &str, f: impl FnOnce(&mut Open) -> T) -> Option<T> {
        let mut st = lock(&self.state);
        let key = hash(cookie);
        match st.open.get_mut(&key) {
            Some(s) if s.until > Instant::now() => Some(f(s)),
            Some(_) => {
                st.open.remove(&key);
                None
            }
            None => None,
        }
    }
}

/// 32 random bytes as 64 hex digits.
pub(super) fn random(rng: &SystemRandom) -> Result<String, ConsoleError> {
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes).map_err(|_| ConsoleError::Random)?;
    Ok(crate::core::hex(&bytes))
}

pub(super) fn hash(token: &str) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Equal bytes, in time that depends on the length only.
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_token_opens_one_session_once() {
        let (s, token) = Sessions::new().unwrap();
        assert_eq!(token.len(), 64, "256 bits in hex");
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(s.login("0".repeat(64).as_str()).unwrap(), None);
        let cookie = s
            .login(&token)
            .unwrap()
            .expect("the printed token signs in");
        assert_ne!(cookie, token);
        assert_eq!(s.login(&token).unwrap(), None, "single use");
        let session = s.take(&cookie).unwrap();
        assert_eq!(session.csrf.len(), 64);
        assert_ne!(session.csrf, cookie);
        assert!(s.take("not-a-session").is_none());
        assert!(s.take(&token).is_none(), "the login token is no session");
    }

    #[test]
    fn an_expired_login_token_opens_nothing() {
        let (s, token) = Sessions::new().unwrap();
        lock(&s.state).login.as_mut().unwrap().1 = Instant::now();
        assert_eq!(s.login(&token).unwrap(), None);
    }

    #[test]
    fn csrf_tokens_must_match_exactly_and_flashes_show_once() {
        let (s, token) = Sessions::new().unwrap();
        let cookie = s.login(&token).unwrap().unwrap();
        let csrf = s.take(&cookie).unwrap().csrf;
        assert!(s.csrf_ok(&cookie, &csrf));
        assert!(!s.csrf_ok(&cookie, ""));
        assert!(!s.csrf_ok(&cookie, &csrf[..63]));
        assert!(!s.csrf_ok(&cookie, &format!("{csrf}0")));
        let mut other = csrf.clone().into_bytes();
        other[0] = if other[0] == b'a' { b'b' } else { b'a' };
        assert!(!s.csrf_ok(&cookie, std::str::from_utf8(&other).unwrap()));
        assert!(
            !s.csrf_ok("other-cookie", &csrf),
            "a token is its session's"
        );
        let flash = Flash {
            ok: true,
            text: "approved".into(),
        };
        s.flash(&cookie, flash.clone());
        assert_eq!(s.peek(&cookie).unwrap().flash, Some(flash.clone()));
        assert_eq!(s.take(&cookie).unwrap().flash, Some(flash));
        assert_eq!(s.take(&cookie).unwrap().flash, None);
    }

    #[test]
    fn an_expired_session_is_gone() {
        let (s, token) = Sessions::new().unwrap();
        let cookie = s.login(&token).unwrap().unwrap();
        lock(&s.state)
            .open
            .values_mut()
            .for_each(|o| o.until = Instant::now());
        assert!(s.take(&cookie).is_none());
        assert!(lock(&s.state).open.is_empty());
    }

    #[test]
    fn comparison_is_exact() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
        assert!(same(b"", b""));
    }
}
