//! Prometheus text exposition (format 0.0.4) for `GET /metrics`: a family
//! is a header and its samples; each source adds its own families.

use std::fmt::{Display, Write};

/// A `/metrics` body being built.
#[derive(Debug, Default)]
pub(crate) struct Exposition {
    text: String,
}

/// Upper bounds of a histogram's buckets and the cumulative counts under
/// them (the `+Inf` bucket is the total count).
#[derive(Clone, Debug, Default)]
pub(crate) struct Histogram {
    pub bounds: &'static [f64],
    pub cumulative: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Exposition {
    /// A single-valued gauge.
    pub(crate) fn gauge(&mut self, name: &str, help: &str, value: u64) {
        self.header(name, help, "gauge");
        self.sample(name, &[], value);
    }

    /// A counter with one sample per label set.
    pub(crate) fn counter(&mut self, name: &str, help: &str, samples: &[(&[(&str, &str)], u64)]) {
        self.header(name, help, "counter");
        for (labels, value) in samples {
            self.sample(name, labels, value);
        }
    }

    /// `# HELP` and `# TYPE` of a family; its samples follow.
    pub(crate) fn header(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One sample line.
    pub(crate) fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// A histogram family (`_bucket`, `_sum`, `_count`).
    pub(crate) fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.header(name, help, "histogram");
        let bucket = format!("{name}_bucket");
        for (bound, n) in h.bounds.iter().zip(&h.cumulative) {
            self.sample(&bucket, &[("le", &bound.to_string())], n);
        }
        self.sample(&bucket, &[("le", "+Inf")], h.count);
        self.sample(&format!("{name}_sum"), &[], h.sum);
        self.sample(&format!("{name}_count"), &[], h.count);
    }

    pub(crate) fn finish(self) -> String {
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

    #[test]
    fn histograms_have_cumulative_buckets_sum_and_count() {
        let mut e = Exposition::default();
        e.histogram(
            "x_seconds",
            "Time.",
            &Histogram {
                bounds: &[0.01, 0.5],
                cumulative: vec![1, 3],
                sum: 0.75,
                count: 4,
            },
        );
        assert_eq!(
            e.finish(),
            "# HELP x_seconds Time.\n# TYPE x_seconds histogram\n\
             x_seconds_bucket{le=\"0.01\"} 1\nx_seconds_bucket{le=\"0.5\"} 3\n\
             x_seconds_bucket{le=\"+Inf\"} 4\nx_seconds_sum 0.75\nx_seconds_count 4\n"
        );
    }
}
