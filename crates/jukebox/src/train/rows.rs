//! The rows a network trains on, and watches after every epoch: every row of the split, or a
//! stratified subsample of them (a *row budget*, the network's `max_train_rows`).
//!
//! Why a budget: an epoch over the full data's 700k training rows takes seconds, and a sweep of
//! 8 runs of 10-25 epochs several minutes, while the answer a sweep gives (which settings win)
//! is often already clear from a fraction of the rows, because the data repeats: a song stays in
//! a chart for weeks, so the rows hold far fewer distinct (song, country) pairs than rows. The
//! subsample keeps each country's share of the rows (stratified), is drawn from the seed, and is
//! computed once per sweep and shared by its runs ([`TrainingRows`] borrows the prepared data
//! when no budget applies, so nothing is copied then).
//!
//! With a budget the validation rows watched after every epoch (the history, early stopping)
//! are a stratified subsample too, a quarter of the budget (the split's 64/16 ratio); the
//! scores a sweep chooses by are still computed on every validation row once the run ends.

use std::borrow::Cow;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::prepare::PreparedData;

/// Training and watched validation rows of one fit (or of every run of a sweep).
#[derive(Clone, Debug)]
pub struct TrainingRows<'a> {
    pub x_train: Cow<'a, [f32]>,
    pub y_train: Cow<'a, [u32]>,
    pub x_val: Cow<'a, [f32]>,
    pub y_val: Cow<'a, [u32]>,
    /// Training rows of the split (what the budget drew from).
    pub of: usize,
}

impl<'a> TrainingRows<'a> {
    /// Every row of `data` when `budget` is `None` or at least the training rows; else a
    /// stratified subsample of `budget` training rows (and `budget / 4` validation rows), drawn
    /// from `seed`.
    pub fn new(data: &'a PreparedData, budget: Option<usize>, seed: u64) -> TrainingRows<'a> {
        let n_features = data.n_features();
        let (x_train, y_train) = subsample(&data.x_train, &data.y_train, n_features, budget, seed);
        let (x_val, y_val) = subsample(&data.x_val, &data.y_val, n_features, budget.map(|b| (b / 4).max(1)), seed);
        TrainingRows { x_train, y_train, x_val, y_val, of: data.n_train() }
    }

    pub fn n_train(&self) -> usize {
        self.y_train.len()
    }

    /// Whether the rows are a subsample (a budget applied).
    pub fn is_subsample(&self) -> bool {
        self.n_train() < self.of
    }
}

/// `budget` rows of `x`/`y` (a few more if many classes are too small for a row of their own),
/// each class keeping its share (at least one row of every class present), in their original
/// order; borrowed when every row is kept.
fn subsample<'a>(
    x: &'a [f32],
    y: &'a [u32],
    n_features: usize,
    budget: Option<usize>,
    seed: u64,
) -> (Cow<'a, [f32]>, Cow<'a, [u32]>) {
    let n = y.len();
    let Some(budget) = budget.filter(|&b| b < n) else { return (Cow::Borrowed(x), Cow::Borrowed(y)) };
    let n_classes = y.iter().max().map_or(0, |&m| m as usize + 1);
    let mut by_class: Vec<Vec<u32>> = vec![Vec::new(); n_classes];
    for (i, &label) in y.iter().enumerate() {
        by_class[label as usize].push(i as u32);
    }
    // A stream of its own (not the shuffling's), so a budget does not change the epochs' order.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_b0d6_e7a1_u64);
    // Each class's share of the budget, rounded down (at least one row), then the rows left over
    // to the classes with the largest remainders (ties to the lower class), so that the budget is
    // met exactly unless the one-row minimum of small classes goes over it.
    let share = |rows: usize| rows as u128 * budget as u128;
    let mut quotas: Vec<usize> = by_class
        .iter()
        .map(|rows| if rows.is_empty() { 0 } else { (share(rows.len()) / n as u128).max(1) as usize })
        .collect();
    let mut by_remainder: Vec<usize> = (0..n_classes).filter(|&c| !by_class[c].is_empty()).collect();
    by_remainder.sort_by_key(|&c| (std::cmp::Reverse(share(by_class[c].len()) % n as u128), c));
    let left = budget.saturating_sub(quotas.iter().sum());
    for &c in by_remainder.iter().cycle().take(left) {
        quotas[c] = (quotas[c] + 1).min(by_class[c].len());
    }
    let mut chosen: Vec<u32> = Vec::with_capacity(budget + n_classes);
    for (rows, &quota) in by_class.iter_mut().zip(&quotas) {
        let (picked, _) = rows.partial_shuffle(&mut rng, quota);
        chosen.extend_from_slice(picked);
    }
    chosen.sort_unstable();
    let mut xs = Vec::with_capacity(chosen.len() * n_features);
    for &i in &chosen {
        let i = i as usize;
        xs.extend_from_slice(&x[i * n_features..(i + 1) * n_features]);
    }
    let ys = chosen.iter().map(|&i| y[i as usize]).collect();
    (Cow::Owned(xs), Cow::Owned(ys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_keeps_every_class_share_and_the_same_seed_draws_the_same_rows() {
        // 3 features; classes 0, 1, 2 with 600, 300 and 100 rows; each row's features name it.
        let y: Vec<u32> = (0..1000)
            .map(|i| {
                if i < 600 {
                    0
                } else if i < 900 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let x: Vec<f32> = (0..1000).flat_map(|i| [i as f32, 0.5, y[i] as f32]).collect();
        let (xs, ys) = subsample(&x, &y, 3, Some(100), 7);
        assert_eq!(ys.len(), 100);
        let count = |c: u32| ys.iter().filter(|&&l| l == c).count();
        assert_eq!([count(0), count(1), count(2)], [60, 30, 10]);
        // Rows stay whole and in their original order.
        let rows: Vec<&[f32]> = xs.chunks(3).collect();
        assert!(rows.windows(2).all(|w| w[0][0] < w[1][0]));
        assert!(rows.iter().zip(ys.iter()).all(|(r, &l)| r[2] == l as f32 && y[r[0] as usize] == l));
        assert_eq!(subsample(&x, &y, 3, Some(100), 7), (xs.clone(), ys.clone()));
        assert_ne!(subsample(&x, &y, 3, Some(100), 8).0, xs, "another seed, other rows");
        // No budget, or one above the rows: the rows themselves, not a copy.
        assert!(matches!(subsample(&x, &y, 3, None, 7).0, Cow::Borrowed(_)));
        assert!(matches!(subsample(&x, &y, 3, Some(5000), 7).1, Cow::Borrowed(_)));
        // Shares that do not divide evenly: the largest remainders get the rows left over.
        let (_, ys) = subsample(&x, &y, 3, Some(99), 7);
        let count = |c: u32| ys.iter().filter(|&&l| l == c).count();
        assert_eq!([count(0), count(1), count(2)], [59, 30, 10]);
        // A class too small for its share keeps one row.
        assert_eq!(subsample(&x, &y, 3, Some(5), 7).1.iter().filter(|&&l| l == 2).count(), 1);
    }
}
