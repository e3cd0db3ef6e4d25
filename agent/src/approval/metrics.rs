//! Prometheus text exposition (format 0.0.4) for `GET /metrics`. A metric is
//! one call on [`Exposition`]; the admin server asks each source
//! ([`super::Approvals::metrics`] today) to add its families.

use std::fmt::Write;

/// A `/metrics` body being built.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// A single-valued gauge.
    pub fn gauge(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, help, "gauge", &[(&[], value)]);
    }

    /// A counter with one sample per label set.
    pub fn counter(&mut self, name: &str, help: &str, samples: &[(&[(&str, &str)], u64)]) {
        self.family(name, help, "counter", samples);
    }

    fn family(&mut self, name: &str, help: &str, kind: &str, samples: &[(&[(&str, &str)], u64)]) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            self.text.push_str(name);
            if !labels.is_empty() {
                let inner: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                let _ = write!(self.text, "{{{}}}", inner.join(","));
            }
            let _ = writeln!(self.text, " {value}");
        }
    }

    pub fn finish(self) -> String {
        self.text
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_in_text_format() {
        let mut e = Exposition::default();
        e.gauge("x_held", "Held now.", 2);
        e.counter("x_total", "All.", &[(&[("outcome", "a\"b")], 3)]);
        assert_eq!(
            e.finish(),
            "# HELP x_held Held now.\n# TYPE x_held gauge\nx_held 2\n\
             # HELP x_total All.\n# TYPE x_total counter\nx_total{outcome=\"a\\\"b\"} 3\n"
        );
    }
}
