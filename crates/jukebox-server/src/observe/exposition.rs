//! The Prometheus text exposition format (version 0.0.4), written by hand: a few counters,
//! gauges and histograms need no client library. [`family`] writes a metric's `HELP` and `TYPE`
//! lines, [`sample`] one value with its labels (escaped as the format requires), [`histogram`]
//! a [`Histogram`]'s cumulative `_bucket` lines, `_sum` and `_count`.

use std::fmt::Write as _;

/// Observations of one series against bucket upper bounds given when observing and writing.
#[derive(Debug, Clone, Default)]
pub(super) struct Histogram {
    /// Observations per bucket (not cumulative; summed when written).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    pub(super) fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.counts.len() != bounds.len() {
            self.counts = vec![0; bounds.len()];
        }
        if let Some(i) = bounds.iter().position(|&b| value <= b) {
            self.counts[i] += 1;
        }
        self.sum += value;
        self.count += 1;
    }
}

/// Owned label values as the borrowed pairs [`sample`] takes.
pub(super) fn borrowed<'a>(labels: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    labels.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A metric family's `# HELP` and `# TYPE` lines.
pub(super) fn family(w: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(w, "# HELP {name} {help}");
    let _ = writeln!(w, "# TYPE {name} {kind}");
}

/// One sample line: `name{key="value",...} value`.
pub(super) fn sample(w: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    w.push_str(name);
    if !labels.is_empty() {
        w.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                w.push(',');
            }
            let _ = write!(w, "{key}=\"");
            for c in value.chars() {
                match c {
                    '\\' => w.push_str("\\\\"),
                    '"' => w.push_str("\\\""),
                    '\n' => w.push_str("\\n"),
                    c => w.push(c),
                }
            }
            w.push('"');
        }
        w.push('}');
    }
    let _ = writeln!(w, " {}", number(value));
}

/// A histogram's series: cumulative `_bucket` lines ending with `le="+Inf"`, `_sum`, `_count`.
pub(super) fn histogram(w: &mut String, name: &str, labels: &[(&str, &str)], bounds: &[f64], h: &Histogram) {
    let mut cumulative = 0;
    let bucket = format!("{name}_bucket");
    for (i, bound) in bounds.iter().enumerate() {
        cumulative += h.counts.get(i).copied().unwrap_or(0);
        let le = number(*bound);
        let mut all = labels.to_vec();
        all.push(("le", &le));
        sample(w, &bucket, &all, cumulative as f64);
    }
    let mut all = labels.to_vec();
    all.push(("le", "+Inf"));
    sample(w, &bucket, &all, h.count as f64);
    sample(w, &format!("{name}_sum"), labels, h.sum);
    sample(w, &format!("{name}_count"), labels, h.count as f64);
}

/// A sample value as Prometheus writes it: integers without a fraction.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_end_with_inf_sum_and_count() {
        let mut h = Histogram::default();
        h.observe(&[1.0, 2.0], 0.5);
        h.observe(&[1.0, 2.0], 1.5);
        h.observe(&[1.0, 2.0], 7.0);
        let mut out = String::new();
        histogram(&mut out, "x", &[("name", "m\"q")], &[1.0, 2.0], &h);
        assert_eq!(
            out,
            "x_bucket{name=\"m\\\"q\",le=\"1\"} 1\nx_bucket{name=\"m\\\"q\",le=\"2\"} 2\n\
             x_bucket{name=\"m\\\"q\",le=\"+Inf\"} 3\nx_sum{name=\"m\\\"q\"} 9\nx_count{name=\"m\\\"q\"} 3\n"
        );
    }
}
