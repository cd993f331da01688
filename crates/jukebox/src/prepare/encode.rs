//! Step 1 and 3 of the preparation: the label encoder (country code <-> class index) and the
//! min-max scaler (feature -> `[0, 1]`).
//!
//! Both are the model folder contract's types ([`model_folder::LabelEncoder`], [`Scaler`]: the
//! JSON the artifacts carry and the request client and the server read), wrapped here to be
//! fitted on and applied to polars frames. The scaler is fitted on the training rows only.

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use jukebox_protocol::model_folder::{self, Scaler};

use super::error::{check_column, polars_err, PrepareError, Result};
use crate::display::Table;

/// Class names in sorted order; class `i` is `classes[i]` (scikit-learn's `LabelEncoder`).
///
/// Fits and applies the model folder's [`model_folder::LabelEncoder`] (its JSON, through
/// `Deref` its fields) on polars frames.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LabelEncoder(pub model_folder::LabelEncoder);

impl std::ops::Deref for LabelEncoder {
    type Target = model_folder::LabelEncoder;
    fn deref(&self) -> &model_folder::LabelEncoder {
        &self.0
    }
}

impl LabelEncoder {
    /// The distinct non-null values of the string column `column`, sorted.
    pub fn fit(frame: &DataFrame, column: &str) -> Result<LabelEncoder> {
        let unique = frame
            .clone()
            .lazy()
            .select([col(column).drop_nulls().unique().sort(SortOptions::default())])
            .collect()
            .map_err(polars_err(format!("listing the classes of `{column}`")))?;
        let classes = unique
            .column(column)
            .and_then(|c| c.str().cloned())
            .map_err(polars_err(format!("column `{column}` must hold text")))?
            .iter()
            .flatten()
            .map(str::to_string)
            .collect();
        Ok(LabelEncoder(model_folder::LabelEncoder { classes }))
    }

    /// An encoder for known classes; they are sorted and deduplicated.
    pub fn from_classes(classes: impl IntoIterator<Item = impl Into<String>>) -> LabelEncoder {
        let mut classes: Vec<String> = classes.into_iter().map(Into::into).collect();
        classes.sort();
        classes.dedup();
        LabelEncoder(model_folder::LabelEncoder { classes })
    }

    pub fn classes(&self) -> &[String] {
        &self.0.classes
    }
    pub fn len(&self) -> usize {
        self.0.classes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.classes.is_empty()
    }

    /// The class index of each label.
    pub fn transform<S: AsRef<str>>(&self, labels: &[S]) -> Result<Vec<u32>> {
        labels
            .iter()
            .map(|label| {
                let label = label.as_ref();
                self.classes()
                    .binary_search_by(|c| c.as_str().cmp(label))
                    .map(|i| i as u32)
                    .map_err(|_| PrepareError::UnknownLabel { label: label.to_string(), n_classes: self.len() })
            })
            .collect()
    }

    /// The label of each class index.
    pub fn inverse_transform(&self, indices: &[u32]) -> Result<Vec<&str>> {
        indices
            .iter()
            .map(|&index| {
                self.classes()
                    .get(index as usize)
                    .map(String::as_str)
                    .ok_or(PrepareError::UnknownIndex { index, n_classes: self.len() })
            })
            .collect()
    }

    /// An expression mapping the string column `column` to class indices (UInt32); an unknown
    /// value makes the query fail.
    pub fn encode_expr(&self, column: &str) -> Expr {
        let classes = Series::new("classes".into(), self.classes());
        let indices = Series::new("indices".into(), (0..self.len() as u32).collect::<Vec<_>>());
        col(column).replace_strict(lit(classes), lit(indices), None::<Expr>, Some(DataType::UInt32))
    }
}

/// Scales each feature to `[0, 1]` with the minimum and maximum seen when fitting
/// (scikit-learn's `MinMaxScaler`).
///
/// Fits the model folder's [`Scaler`] on a polars frame and applies it as polars expressions;
/// the scaling rule itself (a constant feature is shifted to 0, not divided by zero) is the
/// contract's, so training, the request client and the server scale alike. Hand-rolled rather
/// than linfa-preprocessing's `LinearScaler::min_max`: the artifacts must carry the raw minimum
/// and maximum (linfa keeps only offsets and scales), and scaling as a polars expression keeps the
/// data in the frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MinMaxScaler(pub Scaler);

impl std::ops::Deref for MinMaxScaler {
    type Target = Scaler;
    fn deref(&self) -> &Scaler {
        &self.0
    }
}

impl MinMaxScaler {
    /// Learns each feature's minimum and maximum from `frame` (pass the training rows only).
    pub fn fit(frame: &DataFrame, features: &[&str]) -> Result<MinMaxScaler> {
        for feature in features {
            check_column(frame, feature)?;
        }
        let as_f64 = |f: &str| col(f).cast(DataType::Float64);
        let mut aggregates: Vec<Expr> = features.iter().map(|f| as_f64(f).min().alias(format!("min:{f}"))).collect();
        aggregates.extend(features.iter().map(|f| as_f64(f).max().alias(format!("max:{f}"))));
        let row =
            frame.clone().lazy().select(aggregates).collect().map_err(polars_err("fitting the min-max scaler"))?;
        let value = |name: String| -> Result<f64> {
            let value = row
                .column(&name)
                .and_then(|c| c.get(0).map(|v| v.extract::<f64>()))
                .map_err(polars_err(name.clone()))?;
            value.ok_or_else(|| PrepareError::EmptySplit { split: "train", rows: frame.height() })
        };
        Ok(MinMaxScaler(Scaler {
            features: features.iter().map(|f| f.to_string()).collect(),
            min: features.iter().map(|f| value(format!("min:{f}"))).collect::<Result<_>>()?,
            max: features.iter().map(|f| value(format!("max:{f}"))).collect::<Result<_>>()?,
        }))
    }

    /// One expression per feature computing its scaled value (Float64, same name).
    pub fn exprs(&self) -> Vec<Expr> {
        self.features
            .iter()
            .enumerate()
            .map(|(i, f)| {
                ((col(f.as_str()).cast(DataType::Float64) - lit(self.min[i])) / lit(self.range(i))).alias(f.as_str())
            })
            .collect()
    }

    /// `frame` with every feature column replaced by its scaled value.
    pub fn transform_frame(&self, frame: &DataFrame) -> Result<DataFrame> {
        for feature in &self.features {
            check_column(frame, feature)?;
        }
        frame.clone().lazy().with_columns(self.exprs()).collect().map_err(polars_err("scaling the features"))
    }

    /// Minimum and maximum per feature, as a table.
    pub fn table(&self) -> Table {
        Table::new(
            vec!["feature".into(), "min".into(), "max".into()],
            self.features
                .iter()
                .enumerate()
                .map(|(i, f)| vec![f.clone().into(), self.min[i].into(), self.max[i].into()])
                .collect(),
        )
        .with_caption("min-max scaler (fitted on the training rows)")
    }
}
