//! Glob patterns in policy rules: `*` any run of characters (`/` and `.`
//! included), `?` exactly one; everything else literal.

/// A compiled pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    pattern: Vec<char>,
    /// Host names, methods, operation names and claims compare without
    /// regard to ASCII case, as the services themselves do; process paths
    /// do not (Linux file names are case-sensitive).
    ignore_case: bool,
}

impl Glob {
    pub fn new(pattern: &str, ignore_case: bool) -> Self {
        let pattern = if ignore_case {
            pattern.to_ascii_lowercase()
        } else {
            pattern.to_owned()
        };
        Self {
            pattern: pattern.chars().collect(),
            ignore_case,
        }
    }

    /// Whole-string match, linear in practice: on a mismatch after `*` the
    /// star absorbs one more character and matching resumes.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = if self.ignore_case {
            text.chars().map(|c| c.to_ascii_lowercase()).collect()
        } else {
            text.chars().collect()
        };
        let p = &self.pattern;
        let (mut pi, mut ti) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ti < text.len() {
            match p.get(pi) {
                Some('*') => {
                    star = Some((pi, ti));
                    pi += 1;
                }
                Some(&c) if c == '?' || c == text[ti] => {
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
        p[pi..].iter().all(|&c| c == '*')
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
