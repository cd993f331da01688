//! What a model was fitted on: a fingerprint of the prepared data.
//!
//! A fitted model records the [`DataFingerprint`] of the data it learnt from (the split, the
//! feature list, the row counts and a hash of every row); scoring it on data with another
//! fingerprint is refused, because the number would look comparable and would not be.

/// What a model was fitted on, in a few fields that compare cheaply: the split (strategy and
/// seed), the feature list, the row counts and a hash of every split's rows. Fitted models keep
/// the fingerprint of the data they were fitted on (`Classifier::fitted_on` in
/// [`crate::train`]), so that scoring them on other data (another split, another feature list)
/// is refused instead of giving a number that looks comparable and is not.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DataFingerprint {
    /// The split strategy (`stratified`, `grouped`, ...), or `rows given directly`.
    pub split: String,
    /// The split's seed (none for rows given directly).
    pub seed: Option<u64>,
    /// The feature columns, in model order.
    pub features: Vec<String>,
    /// Rows of train, validation and test.
    pub rows: [usize; 3],
    pub classes: usize,
    /// FNV-1a over the values and labels of the three splits, in order.
    pub rows_hash: u64,
}

impl DataFingerprint {
    /// The fingerprint of rows given to a model directly (`fit_rows`): `n_features` unnamed
    /// columns, all rows training rows.
    pub fn of_rows(x: &[f32], y: &[u32], n_features: usize, n_classes: usize) -> DataFingerprint {
        DataFingerprint {
            split: "rows given directly".to_string(),
            seed: None,
            features: (1..=n_features).map(|i| format!("column {i}")).collect(),
            rows: [y.len(), 0, 0],
            classes: n_classes,
            rows_hash: rows_hash(&[(x, y)]),
        }
    }

    /// What differs between `self` (what a model was fitted on) and `other`, one phrase each;
    /// empty when they are the same data.
    pub fn differences(&self, other: &DataFingerprint) -> Vec<String> {
        let mut found = Vec::new();
        let seed = |s: Option<u64>| s.map(|s| format!(", seed {s}")).unwrap_or_default();
        if self.split != other.split || self.seed != other.seed {
            found.push(format!(
                "split {}{} instead of {}{}",
                self.split,
                seed(self.seed),
                other.split,
                seed(other.seed)
            ));
        }
        if self.features != other.features {
            found.push(format!("features [{}] instead of [{}]", self.features.join(", "), other.features.join(", ")));
        }
        if self.classes != other.classes {
            found.push(format!("{} classes instead of {}", self.classes, other.classes));
        }
        if self.rows != other.rows {
            let rows = |r: [usize; 3]| format!("{}/{}/{}", r[0], r[1], r[2]);
            found.push(format!("train/validation/test rows {} instead of {}", rows(self.rows), rows(other.rows)));
        }
        if found.is_empty() && self.rows_hash != other.rows_hash {
            let why = "other data, or prepared again after it changed";
            found.push(format!("the same split settings and sizes but other rows ({why})"));
        }
        found
    }
}

impl std::fmt::Display for DataFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} split", self.split)?;
        if let Some(seed) = self.seed {
            write!(f, " (seed {seed})")?;
        }
        write!(
            f,
            ", {} features, {}/{}/{} train/validation/test rows",
            self.features.len(),
            self.rows[0],
            self.rows[1],
            self.rows[2]
        )
    }
}

/// FNV-1a (64 bit) over every value's bits and every label: stable across Rust versions and runs,
/// and fast enough (a few hundred thousand words) to compute whenever a model is fitted.
pub(super) fn rows_hash(splits: &[(&[f32], &[u32])]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut word = |w: u32| {
        hash ^= w as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    };
    for (x, y) in splits {
        // The lengths first, so rows moved from one split to the next change the hash.
        word(x.len() as u32);
        x.iter().for_each(|v| word(v.to_bits()));
        word(y.len() as u32);
        y.iter().copied().for_each(&mut word);
    }
    hash
}
