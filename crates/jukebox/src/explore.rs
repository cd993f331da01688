//! Stage 1: look at the data before modelling it.
//!
//! Every function takes the merged [`ChartData`](crate::data::ChartData) (or its frame) and
//! returns a [`Table`] or [`Plot`] that renders inline in Jupyter. All computations are polars
//! expressions evaluated in one pass over the columns.

use polars::prelude::*;

use crate::data::columns::{ARTISTS, COUNTRY, NAME, POPULARITY, SNAPSHOT_DATE};
use crate::data::FEATURES;
use crate::display::{heatmap, Cell, ColourScale, Plot, PlotError, Table};

/// Why an exploration step failed.
#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    #[error("column `{0}` is not in the data")]
    MissingColumn(String),
    #[error("column `{column}` is not numeric ({dtype})")]
    NotNumeric { column: String, dtype: String },
    #[error("{context}: {source}")]
    Polars { context: String, source: PolarsError },
    #[error(transparent)]
    Plot(#[from] PlotError),
}

pub type Result<T, E = ExploreError> = std::result::Result<T, E>;

fn polars_err(context: &str) -> impl FnOnce(PolarsError) -> ExploreError + '_ {
    move |source| ExploreError::Polars { context: context.to_string(), source }
}

/// The audio features a histogram makes sense for (continuous values between known bounds): the
/// model's [`FEATURES`] without the flag (`is_explicit`), the categories (`key`, `mode`) and the
/// unbounded `duration_ms`.
pub const AUDIO_FEATURES: [&str; 9] = {
    let [_explicit, _duration, danceability, energy, _key, loudness, _mode, speechiness, acousticness, instrumentalness, liveness, valence, tempo] =
        FEATURES;
    [danceability, energy, loudness, speechiness, acousticness, instrumentalness, liveness, valence, tempo]
};

/// Names of the numeric columns (booleans count as numeric, 0/1).
pub fn numeric_columns(frame: &DataFrame) -> Vec<String> {
    frame
        .schema()
        .iter()
        .filter(|(_, dtype)| dtype.is_primitive_numeric() || matches!(dtype, DataType::Boolean))
        .map(|(name, _)| name.to_string())
        .collect()
}

fn as_number(name: &str) -> Expr {
    col(name).cast(DataType::Float64)
}

/// One-row frame -> the f64 in column `name`.
fn scalar(row: &DataFrame, name: &str) -> f64 {
    row.column(name).ok().and_then(|c| c.get(0).ok()).and_then(|v| v.extract::<f64>()).unwrap_or(f64::NAN)
}

/// Summary statistics, one row per numeric column (the transpose of pandas' `describe()`):
/// count, mean, std, min, 25%, 50%, 75%, max.
pub fn describe(frame: &DataFrame) -> Result<Table> {
    let columns = numeric_columns(frame);
    const STATS: [&str; 8] = ["count", "mean", "std", "min", "25%", "50%", "75%", "max"];
    // Statistics of integer columns are computed on the integers themselves (a cast to f64 first
    // copies each column once more; the quantiles took ~18 % longer on 1.1 M rows); only booleans
    // need one. One chunk per column: polars takes a quantile by quickselect only from one
    // contiguous slice and sorts a column of several chunks (a file of several row groups, as the
    // 1.1 M-row bench input has) once per quantile; describe took 0.38-0.67 s instead of ~0.35 s.
    // Both are done once, before the statistics, so no column is cast or copied once per
    // statistic.
    let booleans: Vec<Expr> = columns
        .iter()
        .filter(|c| matches!(frame.schema().get(c.as_str()), Some(DataType::Boolean)))
        .map(|c| as_number(c))
        .collect();
    let mut numeric = frame
        .select(columns.iter().map(String::as_str))
        .and_then(|numeric| numeric.lazy().with_columns(booleans).collect())
        .map_err(polars_err("describe"))?;
    numeric.rechunk_mut_par();
    let quantile = |c: &str, q: f64| col(c).quantile(lit(q), QuantileMethod::Linear);
    let exprs: Vec<Expr> = columns
        .iter()
        .flat_map(|c| {
            [
                col(c).count(),
                col(c).mean(),
                col(c).std(1),
                col(c).min(),
                quantile(c, 0.25),
                quantile(c, 0.5),
                quantile(c, 0.75),
                col(c).max(),
            ]
            .map(|e| e.cast(DataType::Float64))
            .into_iter()
            .zip(STATS)
            .map(move |(e, stat)| e.alias(format!("{c}|{stat}")))
        })
        .collect();
    let row = numeric.lazy().select(exprs).collect().map_err(polars_err("describe"))?;
    let rows = columns
        .iter()
        .map(|c| {
            std::iter::once(Cell::from(c.as_str()))
                .chain(STATS.iter().map(|s| Cell::Number(scalar(&row, &format!("{c}|{s}")))))
                .collect()
        })
        .collect();
    let header = std::iter::once("column").chain(STATS).map(String::from).collect();
    Ok(Table::new(header, rows).with_caption("Summary statistics"))
}

/// The distinct country codes, in first-seen order, with how many chart entries each has.
pub fn countries(frame: &DataFrame) -> Result<Table> {
    let counts = frame
        .clone()
        .lazy()
        .group_by_stable([col(COUNTRY)])
        .agg([len().cast(DataType::Float64).alias("chart entries")])
        .collect()
        .map_err(polars_err("countries"))?;
    Ok(Table::from_frame(&counts).with_caption(format!("{} countries", counts.height())))
}

fn require_numeric(frame: &DataFrame, column: &str) -> Result<()> {
    match frame.schema().get(column) {
        None => Err(ExploreError::MissingColumn(column.into())),
        Some(d) if d.is_primitive_numeric() || matches!(d, DataType::Boolean) => Ok(()),
        Some(d) => Err(ExploreError::NotNumeric { column: column.into(), dtype: d.to_string() }),
    }
}

/// Pearson correlation of every other numeric column with `target`, strongest positive first,
/// coloured red (negative) - yellow (none) - blue (positive).
pub fn correlations_with(frame: &DataFrame, target: &str) -> Result<Table> {
    require_numeric(frame, target)?;
    let others: Vec<String> = numeric_columns(frame).into_iter().filter(|c| c != target).collect();
    let exprs: Vec<Expr> =
        others.iter().map(|c| pearson_corr(as_number(c), as_number(target)).alias(c.as_str())).collect();
    let row = frame.clone().lazy().select(exprs).collect().map_err(polars_err("correlations"))?;
    let mut pairs: Vec<(String, f64)> = others.iter().map(|c| (c.clone(), scalar(&row, c))).collect();
    pairs.sort_by(|a, b| b.1.total_cmp(&a.1));
    let rows = pairs.into_iter().map(|(c, r)| vec![Cell::Text(c), Cell::Number(r)]).collect();
    Ok(Table::new(vec!["column".into(), format!("correlation with {target}")], rows)
        .with_caption(format!("Correlation with {target} (red: negative, yellow: none, blue: positive)"))
        .with_colour_scale(ColourScale::RED_YELLOW_BLUE, -1.0, 1.0, 1))
}

/// The full correlation matrix of the numeric columns: (column names, matrix).
pub fn correlation_matrix(frame: &DataFrame) -> Result<(Vec<String>, Vec<Vec<f64>>)> {
    let columns = numeric_columns(frame);
    let exprs: Vec<Expr> = columns
        .iter()
        .enumerate()
        .flat_map(|(i, a)| {
            columns[i..].iter().map(move |b| pearson_corr(as_number(a), as_number(b)).alias(format!("{a}|{b}")))
        })
        .collect();
    let row = frame.clone().lazy().select(exprs).collect().map_err(polars_err("correlation matrix"))?;
    let n = columns.len();
    let mut matrix = vec![vec![f64::NAN; n]; n];
    for i in 0..n {
        for j in i..n {
            let r = scalar(&row, &format!("{}|{}", columns[i], columns[j]));
            matrix[i][j] = r;
            matrix[j][i] = r;
        }
    }
    Ok((columns, matrix))
}

/// The correlation matrix as a heatmap with each coefficient written in its cell.
pub fn correlation_heatmap(frame: &DataFrame) -> Result<Plot> {
    let (columns, matrix) = correlation_matrix(frame)?;
    Ok(heatmap(
        "Correlation between numeric columns",
        &columns,
        &columns,
        &matrix,
        ColourScale::RED_YELLOW_BLUE,
        (-1.0, 1.0),
        |v| if v.is_finite() { format!("{v:.2}") } else { String::new() },
    )?)
}

/// The mean of every model feature, and of popularity, per country, countries sorted by code.
pub fn country_means(frame: &DataFrame) -> Result<Table> {
    // Popularity last: not an audio feature, but what "which country has the best taste?" asks.
    let columns = FEATURES.iter().copied().chain([POPULARITY]);
    let means = frame
        .clone()
        .lazy()
        .group_by([col(COUNTRY)])
        .agg(columns.map(|f| as_number(f).mean().alias(f)).collect::<Vec<_>>())
        .sort([COUNTRY], Default::default())
        .collect()
        .map_err(polars_err("per-country means"))?;
    Ok(Table::from_frame(&means).with_caption("Mean of each audio feature, and of popularity, per country"))
}

/// The `n` songs with the highest mean popularity between `start` and `end` (inclusive,
/// `YYYY-MM-DD`). Data without chart dates (such as the sample) gets a note and the top `n` over
/// all entries instead.
pub fn top_songs(frame: &DataFrame, n: usize, start: &str, end: &str) -> Result<Table> {
    let mut entries = frame.clone().lazy();
    let caption = if frame.schema().contains(SNAPSHOT_DATE) {
        let date = |s: &str| {
            lit(s.to_string()).str().to_date(StrptimeOptions { format: Some("%Y-%m-%d".into()), ..Default::default() })
        };
        entries = entries.filter(col(SNAPSHOT_DATE).gt_eq(date(start)).and(col(SNAPSHOT_DATE).lt_eq(date(end))));
        format!("Top {n} songs by mean popularity, {start} to {end}")
    } else {
        format!(
            "Note: this data has no chart dates (no {SNAPSHOT_DATE} column), so the window {start} to {end} \
             cannot be applied. Top {n} songs by mean popularity over all chart entries:"
        )
    };
    let top = entries
        .group_by([col(NAME), col(ARTISTS)])
        .agg([
            as_number(POPULARITY).mean().alias("mean popularity"),
            len().cast(DataType::Float64).alias("chart entries"),
        ])
        .sort_by_exprs(
            [col("mean popularity"), col(NAME)],
            SortMultipleOptions::default().with_order_descending_multi([true, false]),
        )
        .limit(n as IdxSize)
        .collect()
        .map_err(polars_err("top songs"))?;
    Ok(Table::from_frame(&top).with_caption(caption))
}

/// A histogram of each of `columns` (for example [`AUDIO_FEATURES`]), in a grid of small plots.
pub fn histograms(frame: &DataFrame, columns: &[&str]) -> Result<Plot> {
    use plotters::prelude::*;
    const BINS: usize = 30;
    for c in columns {
        require_numeric(frame, c)?;
    }
    // Bin counts via expressions: bin index = floor((x - min) / width), clipped to the last bin.
    let mut binned = Vec::with_capacity(columns.len());
    for c in columns {
        let bounds = frame
            .clone()
            .lazy()
            .select([as_number(c).min().alias("min"), as_number(c).max().alias("max")])
            .collect()
            .map_err(polars_err("histogram bounds"))?;
        let (low, high) = (scalar(&bounds, "min"), scalar(&bounds, "max"));
        let width = if high > low { (high - low) / BINS as f64 } else { 1.0 };
        let counts = frame
            .clone()
            .lazy()
            .select([((as_number(c) - lit(low)) / lit(width))
                .floor()
                .clip(lit(0.0), lit((BINS - 1) as f64))
                .cast(DataType::UInt32)
                .alias("bin")])
            .group_by([col("bin")])
            .agg([len().alias("count")])
            .collect()
            .map_err(polars_err("histogram"))?;
        let mut bins = vec![0u32; BINS];
        let bin_ids = counts.column("bin").and_then(|s| s.u32().cloned()).map_err(polars_err("histogram"))?;
        let bin_counts =
            counts.column("count").and_then(|s| s.cast(&DataType::UInt32)).map_err(polars_err("histogram"))?;
        let bin_counts = bin_counts.u32().map_err(polars_err("histogram"))?;
        for (b, n) in bin_ids.iter().zip(bin_counts.iter()) {
            if let (Some(b), Some(n)) = (b, n) {
                bins[b as usize] = n;
            }
        }
        binned.push((c.to_string(), low, width, bins));
    }
    let grid_cols = 3usize;
    let grid_rows = columns.len().div_ceil(grid_cols).max(1);
    Ok(Plot::draw(900, 230 * grid_rows as u32, |root| {
        let areas = root.split_evenly((grid_rows, grid_cols));
        for ((name, low, width, bins), area) in binned.iter().zip(areas) {
            let top = *bins.iter().max().unwrap_or(&1) as f64 * 1.05;
            let mut chart = ChartBuilder::on(&area)
                .caption(name, ("sans-serif", 14))
                .margin(6)
                .x_label_area_size(22)
                .y_label_area_size(40)
                .build_cartesian_2d(*low..(*low + width * BINS as f64), 0.0..top.max(1.0))?;
            chart.configure_mesh().disable_mesh().x_labels(4).y_labels(4).label_style(("sans-serif", 10)).draw()?;
            chart.draw_series(bins.iter().enumerate().map(|(i, n)| {
                let x0 = low + width * i as f64;
                Rectangle::new([(x0, 0.0), (x0 + width, *n as f64)], RGBColor(69, 117, 180).filled())
            }))?;
        }
        Ok::<(), DrawingAreaErrorKind<std::io::Error>>(())
    })?)
}
