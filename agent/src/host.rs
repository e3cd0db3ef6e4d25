//! Host names as airlock compares them, and the `proxy.intercept` patterns
//! that decide which ones are decrypted.

use std::fmt;
use std::net::IpAddr;

/// One `proxy.intercept` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    /// `*.example.com`: any name ending in `.example.com`, at any depth
    /// (not `example.com` itself).
    Suffix(String),
    /// `management.azure.com`: exactly this name.
    Exact(String),
    /// An IP literal, for clients that send no SNI.
    Ip(IpAddr),
}

impl HostPattern {
    /// Parses a pattern; `Err` says why it is not one.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim().trim_end_matches('.');
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self::Ip(ip));
        }
        let (suffix, rest) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let valid_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
        };
        if rest.is_empty() || !rest.split('.').all(valid_label) {
            return Err(format!(
                "{s:?} is not a host name, `*.` followed by a domain, or an IP address"
            ));
        }
        let name = rest.to_ascii_lowercase();
        Ok(if suffix {
            Self::Suffix(name)
        } else {
            Self::Exact(name)
        })
    }

    /// Whether `host` (an SNI name or an IP literal) matches.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        match self {
            Self::Exact(name) => host.eq_ignore_ascii_case(name),
            Self::Suffix(domain) => {
                host.len() > domain.len() + 1
                    && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
                    && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain)
            }
            Self::Ip(ip) => host.parse::<IpAddr>().is_ok_and(|h| h == *ip),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Suffix(d) => write!(f, "*.{d}"),
            Self::Exact(n) => f.write_str(n),
            Self::Ip(ip) => ip.fmt(f),
        }
    }
}

/// The parsed `proxy.intercept` list.
#[derive(Clone, Debug, Default)]
pub struct InterceptList(Vec<HostPattern>);

impl InterceptList {
    /// Parses every entry; the first bad one is the error.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| HostPattern::parse(e.as_ref()))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn matches(&self, host: &str) -> bool {
        self.0.iter().any(|p| p.matches(host))
    }

    pub fn patterns(&self) -> &[HostPattern] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_matches_any_depth_but_not_the_apex() {
        let p = HostPattern::parse("*.windows.net").unwrap();
        assert!(p.matches("acct.blob.core.windows.net"));
        assert!(p.matches("ACCT.Windows.NET."));
        assert!(!p.matches("windows.net"));
        assert!(!p.matches("evilwindows.net"));
        assert!(!p.matches("windows.net.evil.com"));
    }

    #[test]
    fn exact_and_ip() {
        let p = HostPattern::parse("Management.Azure.com").unwrap();
        assert!(p.matches("management.azure.com"));
        assert!(!p.matches("x.management.azure.com"));
        let ip = HostPattern::parse("20.1.2.3").unwrap();
        assert!(ip.matches("20.1.2.3"));
        assert!(!ip.matches("20.1.2.4"));
    }

    #[test]
    fn rejects_non_patterns() {
        for bad in ["*", "*.", "a*b.com", "foo..com", "-x.com", "*.*.com", ""] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?}");
        }
    }
}
