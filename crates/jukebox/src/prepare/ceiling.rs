//! How well could any model do? The accuracy ceiling of a feature list.
//!
//! Rows with identical feature values get the same answer from every model, so of each group of
//! identical inputs at best the rows of its most frequent country are right: counting those per
//! split gives the best accuracy any model reading these features can reach
//! ([`AccuracyCeiling`], what `PreparedData::accuracy_ceiling` returns). On the workshop's data a
//! song charts in many countries with the same audio features, so the ceiling is far below 100 %.

use polars::prelude::*;

use super::error::{polars_err, Result};
use super::split::Splits;
use crate::data::columns::COUNTRY as TARGET;
use crate::display::{Cell, Table};

/// Name of the helper column counting rows per group.
const ROWS: &str = "__rows";

/// One split's row of [`AccuracyCeiling`].
#[derive(Clone, Debug, PartialEq)]
pub struct CeilingRow {
    pub split: &'static str,
    pub rows: usize,
    /// Distinct combinations of feature values: what a model can tell apart.
    pub distinct_inputs: usize,
    /// Distinct (feature values, country) pairs: a song charting in one country on many days
    /// is one pair.
    pub distinct_pairs: usize,
    /// The best accuracy any model of these features can reach on this split's rows.
    pub ceiling: f64,
}

/// The best accuracy any model could reach on each split with the chosen features
/// (`PreparedData::accuracy_ceiling`).
#[derive(Clone, Debug, PartialEq)]
pub struct AccuracyCeiling {
    pub rows: Vec<CeilingRow>,
    pub n_classes: usize,
}

impl AccuracyCeiling {
    /// The row of `split` (`train`, `validation`, `test` or `all`).
    pub fn get(&self, split: &str) -> Option<&CeilingRow> {
        self.rows.iter().find(|r| r.split == split)
    }

    /// Chance: one class in `n_classes`, what guessing scores when every class is equally common.
    pub fn chance(&self) -> f64 {
        1.0 / self.n_classes.max(1) as f64
    }

    pub fn table(&self) -> Table {
        let rows = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    Cell::from(r.split),
                    (r.rows as f64).into(),
                    (r.distinct_inputs as f64).into(),
                    (r.distinct_pairs as f64).into(),
                    r.ceiling.into(),
                    self.chance().into(),
                ]
            })
            .collect();
        Table::new(
            ["split", "rows", "distinct inputs", "distinct (input, country) pairs", "best possible accuracy", "chance"]
                .map(String::from)
                .to_vec(),
            rows,
        )
        .with_caption("the accuracy ceiling: identical inputs get identical answers")
    }
}

impl crate::display::ToHtml for AccuracyCeiling {
    fn to_html(&self) -> String {
        self.table().to_html()
    }
}

impl AccuracyCeiling {
    /// The ceiling of each split of `splits` and of all rows together, reading `features`.
    pub fn of_splits(splits: &Splits, features: &[String], n_classes: usize) -> Result<AccuracyCeiling> {
        let named = [("train", &splits.train), ("validation", &splits.validation), ("test", &splits.test)];
        let mut rows = Vec::with_capacity(4);
        let mut all_pairs: Option<DataFrame> = None;
        for (name, frame) in named {
            let pairs = pair_counts(name, frame, features)?;
            rows.push(ceiling_of_pairs(name, frame.height(), &pairs, features)?);
            match all_pairs.as_mut() {
                Some(all) => {
                    all.vstack_mut(&pairs).map_err(polars_err("joining the pairs of the splits"))?;
                }
                None => all_pairs = Some(pairs),
            }
        }
        // All rows together: a pair's rows are the sum of its rows in each split, so the pair
        // tables (one row per distinct pair) are added up instead of counting the 1.1 M rows again.
        let mut by_pair: Vec<Expr> = features.iter().map(|f| col(f.as_str())).collect();
        by_pair.push(col(TARGET));
        let all_pairs = all_pairs
            .expect("three splits")
            .lazy()
            .group_by(by_pair)
            .agg([col(ROWS).sum().alias(ROWS)])
            .collect()
            .map_err(polars_err("counting (input, country) pairs of all rows"))?;
        let all_rows = rows.iter().map(|r| r.rows).sum();
        rows.push(ceiling_of_pairs("all", all_rows, &all_pairs, features)?);
        crate::memory::release_freed_memory();
        Ok(AccuracyCeiling { rows, n_classes })
    }
}

/// How many rows each distinct (feature values, country) pair has in `frame` (column `ROWS`).
fn pair_counts(split: &str, frame: &DataFrame, features: &[String]) -> Result<DataFrame> {
    let mut by_pair: Vec<Expr> = features.iter().map(|f| col(f.as_str())).collect();
    by_pair.push(col(TARGET));
    frame
        .clone()
        .lazy()
        .group_by(by_pair)
        .agg([len().cast(DataType::UInt64).alias(ROWS)])
        .collect()
        .map_err(polars_err(format!("counting (input, country) pairs of the {split} split")))
}

/// The ceiling of a split of `rows` rows whose pairs `pair_counts` counted: per distinct input,
/// the rows of its most frequent country are right.
fn ceiling_of_pairs(split: &'static str, rows: usize, pairs: &DataFrame, features: &[String]) -> Result<CeilingRow> {
    if rows == 0 {
        return Ok(CeilingRow { split, rows, distinct_inputs: 0, distinct_pairs: 0, ceiling: 0.0 });
    }
    let inputs: Vec<Expr> = features.iter().map(|f| col(f.as_str())).collect();
    let best = pairs
        .clone()
        .lazy()
        .group_by(inputs)
        .agg([col(ROWS).max().alias(ROWS)])
        .collect()
        .map_err(polars_err(format!("counting the inputs of the {split} split")))?;
    let right: f64 = best
        .column(ROWS)
        .and_then(|c| c.cast(&DataType::Float64))
        .map_err(polars_err(ROWS))?
        .f64()
        .map_err(polars_err(ROWS))?
        .sum()
        .unwrap_or(0.0);
    Ok(CeilingRow {
        split,
        rows,
        distinct_inputs: best.height(),
        distinct_pairs: pairs.height(),
        ceiling: right / rows as f64,
    })
}

#[cfg(test)]
fn ceiling_of(split: &'static str, frame: &DataFrame, features: &[String]) -> Result<CeilingRow> {
    ceiling_of_pairs(split, frame.height(), &pair_counts(split, frame, features)?, features)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_counts_identical_inputs_once() {
        // Input (1, 1) charts in A twice and in B once: at best 2 of its 3 rows are right.
        // Input (2, 5) charts only in B: both rows can be right.
        let frame = df!(
            "a" => [1.0, 1.0, 1.0, 2.0, 2.0],
            "b" => [1.0, 1.0, 1.0, 5.0, 5.0],
            TARGET => ["A", "A", "B", "B", "B"],
        )
        .unwrap();
        let row = ceiling_of("test", &frame, &["a".to_string(), "b".to_string()]).unwrap();
        assert_eq!((row.rows, row.distinct_inputs, row.distinct_pairs), (5, 2, 3));
        assert!((row.ceiling - 4.0 / 5.0).abs() < 1e-12, "{}", row.ceiling);
        // With only feature `a`, nothing changes here; an empty split has no ceiling.
        let empty = ceiling_of("validation", &frame.head(Some(0)), &["a".to_string()]).unwrap();
        assert_eq!((empty.rows, empty.ceiling), (0, 0.0));
    }
}
