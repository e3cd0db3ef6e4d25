//! Glob patterns in policy rules: `*` any run of characters (`/` and `.`
//! included), `?` exactly one; everything else literal.

/// A compiled pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    pattern: Box<[u8]>,
    /// Host names, methods, operation names and claims compare without
    /// regard to ASCII case, as the services themselves do; process paths
    /// do not (Linux file names are case-sensitive).
    ignore_case: bool,
}

impl Glob {
    pub fn new(pattern: &str, ignore_case: bool) -> Self {
        Self {
            pattern: pattern.as_bytes().into(),
            ignore_case,
        }
    }

    /// Whole-string match over bytes, without allocating (it runs for every
    /// rule on every request): on a mismatch after `*` the star absorbs one
    /// more byte and matching resumes. `?` is one byte — one character in
    /// the ASCII names rules match.
    pub fn matches(&self, text: &str) -> bool {
        let (p, t) = (&self.pattern[..], text.as_bytes());
        let eq = |a: u8, b: u8| {
            if self.ignore_case {
                a.eq_ignore_ascii_case(&b)
            } else {
                a == b
            }
        };
        let (mut pi, mut ti) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            match p.get(pi) {
                Some(b'*') => {
                    star = Some((pi, ti));
                    pi += 1;
                }
                Some(&c) if c == b'?' || eq(c, t[ti]) => {
                    pi += 1;
                    ti += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        pi = sp + 1;
                        ti = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|&c| c == b'*')
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    #[test]
    fn globs() {
        let g = |p: &str, t: &str| Glob::new(p, true).matches(t);
        assert!(g("*.blob.core.windows.net", "acct.blob.core.windows.net"));
        assert!(!g(
            "*.blob.core.windows.net",
            "blob.core.windows.net.evil.com"
        ));
        assert!(g(
            "Microsoft.Storage/*/listKeys/action",
            "microsoft.storage/storageAccounts/listkeys/action"
        ));
        assert!(g("k8s.pods.exec", "K8S.PODS.EXEC"));
        assert!(!g("k8s.pods.exec", "k8s.pods.execx"));
        assert!(g("a?c", "abc") && !g("a?c", "ac"));
        assert!(g("*", "") && g("**", "x") && !g("", "x"));
        assert!(g(
            "/subscriptions/*/resourcegroups/*",
            "/subscriptions/s/resourceGroups/rg"
        ));
        assert!(!Glob::new("/usr/bin/az", false).matches("/usr/bin/AZ"));
    }
}
