//! How counts are written for people to read, so every part of the workbench prints them alike.
//!
//! One small pure function lives here because the protocol is the one crate both the network
//! (`jukebox-nn`'s Keras-style summary, and through it the notebooks' tables and captions) and
//! the servers (the model server's 413 refusals: "2,000,000 rows; at most 100,000") depend on;
//! it is not part of any wire format, and nothing parses what it writes.

/// `1234567` -> `"1,234,567"`: digits grouped by three with commas, as Keras prints parameter
/// counts.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_digits_by_three() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(62408), "62,408");
        assert_eq!(thousands(1_250_000), "1,250,000");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
    }
}
