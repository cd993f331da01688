//! Tables and plots that render inline in Jupyter: the one place where the workbench renders.
//!
//! The evcxr kernel shows a cell's last value richly when `value.evcxr_display()` compiles: that
//! method prints `EVCXR_BEGIN_CONTENT <mime type>`, the content, and `EVCXR_END_CONTENT`.
//! [`show`] is the one function that writes that envelope. Every value a stage returns for
//! reading implements [`ToHtml`] (beside its type; for the records of other crates in the stage
//! that returns them, e.g. the registry's wire types in `registry`, and the network's summary
//! here), and
//! the blanket trait [`Show`] gives every [`ToHtml`] value its `evcxr_display`. The Rust
//! kernel imports [`Show`] in its prelude (`kernel/evcxr-kernel`); elsewhere, `use
//! jukebox::display::Show;` once. [`Plot`] renders as `image/svg+xml`, drawn with plotters' SVG
//! backend (no system fonts needed); papermill stores both kinds in the executed notebook.
//! [`escape`] is the one HTML escaper (`jukebox_protocol::html::escape`, which the registry
//! server's page uses as well).
//!
//! A cell's result is shown when the cell ends. An output that changes while the cell runs
//! (training progress) is a [`LiveDisplay`]: in the Rust kernel it is redrawn in place.
//!
//! What every table and plot promises a reader (checked by `tests/display.rs` on every kind the
//! stages return):
//!
//! - numbers are written by [`format_number`]: plain decimals from [`PLAIN_NUMBER_MIN`] to
//!   [`PLAIN_NUMBER_MAX`] (`193620.35`, `0.3420`), short scientific notation only outside
//!   (`7.22e-5`, `1.2e8`);
//! - a plot is shown at most [`MAX_PLOT_WIDTH`] pixels wide (JupyterLab's output area): one drawn
//!   wider keeps its drawing and is scaled down through its viewBox ([`Plot::draw`]);
//! - plots with several lines take their colours from [`SERIES_COLOURS`] (none pale) and draw
//!   their legend beside the chart ([`draw_legend`]), never over a curve.

use std::fmt::{self, Write as _};

use polars::prelude::{AnyValue, DataFrame};

mod colour;
mod live;
mod plot;

pub use colour::{series_colour, ColourScale, Rgb, SERIES_COLOURS};
pub use live::{LiveDisplay, LIVE_DISPLAY_MARKER};
pub use plot::{draw_legend, heatmap, svg_width, Plot, PlotError, MAX_PLOT_WIDTH};

/// One table cell.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    Number(f64),
    Empty,
    /// Details one click away: `summary` shows, and `table` opens under it (`<details>`). The
    /// registry's version table folds each version's ids, location and other metadata this way.
    Folded {
        summary: String,
        table: Box<Table>,
    },
}

impl From<String> for Cell {
    fn from(v: String) -> Self {
        Cell::Text(v)
    }
}
impl From<&str> for Cell {
    fn from(v: &str) -> Self {
        Cell::Text(v.to_string())
    }
}
impl From<f64> for Cell {
    fn from(v: f64) -> Self {
        Cell::Number(v)
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Text(s) => f.write_str(s),
            Cell::Number(v) => f.write_str(&format_number(*v)),
            Cell::Empty => Ok(()),
            Cell::Folded { summary, .. } => f.write_str(summary),
        }
    }
}

/// Below this size (and above zero) a number is written in scientific notation.
pub const PLAIN_NUMBER_MIN: f64 = 1e-4;
/// From this size on a number that is not a whole number is written in scientific notation.
pub const PLAIN_NUMBER_MAX: f64 = 1e7;

/// How every table writes a number, so a reader never decodes `1.9362e5`:
///
/// - whole numbers as they are (`19699`, `-6`), up to 10^15;
/// - sizes from [`PLAIN_NUMBER_MIN`] to [`PLAIN_NUMBER_MAX`] as plain decimals: 4 decimals from
///   0.01 to 1,000 (`0.3420`, `120.0070`: a column of scores lines up), 2 from 1,000 on
///   (`193620.35`), and 3 significant digits below 0.01 (`0.00352`, `0.001`);
/// - anything smaller or larger in short scientific notation (`7.22e-5`, `1.2e8`);
/// - `NaN` and `inf` as Rust writes them.
pub fn format_number(v: f64) -> String {
    let size = v.abs();
    if !v.is_finite() {
        v.to_string()
    } else if v == 0.0 {
        // Also -0.0, which `{:.0}` would write as "-0".
        "0".to_string()
    } else if v.fract() == 0.0 && size < 1e15 {
        format!("{v:.0}")
    } else if !(PLAIN_NUMBER_MIN..PLAIN_NUMBER_MAX).contains(&size) {
        let text = format!("{v:.2e}");
        match text.split_once('e') {
            Some((mantissa, exponent)) => {
                format!("{}e{exponent}", mantissa.trim_end_matches('0').trim_end_matches('.'))
            }
            None => text,
        }
    } else if size >= 1e3 {
        format!("{v:.2}")
    } else if size >= 1e-2 {
        format!("{v:.4}")
    } else {
        // 3 significant digits: 0.00352 has its first digit in the 3rd decimal place.
        let decimals = (2 - size.log10().floor() as i32).max(0) as usize;
        let text = format!("{v:.decimals$}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A table with an optional caption and optional per-cell background colours.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub caption: Option<String>,
    /// The header row; a table without columns has none (a record's field/value table).
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    /// Same shape as `rows` when present.
    pub backgrounds: Option<Vec<Vec<Option<Rgb>>>>,
    /// The first cell of each row names the row (a header cell, `<th>`), as in a field table.
    pub row_headers: bool,
}

impl Table {
    pub fn new(columns: Vec<String>, rows: Vec<Vec<Cell>>) -> Table {
        Table { columns, rows, ..Default::default() }
    }

    /// A record as a two-column table without a header row: one row per field, the field's name
    /// in a header cell, then its value.
    pub fn fields(fields: impl IntoIterator<Item = (String, Cell)>) -> Table {
        let rows = fields.into_iter().map(|(name, value)| vec![Cell::Text(name), value]).collect();
        Table { rows, row_headers: true, ..Default::default() }
    }

    /// A table showing every row of `frame` (take `head` first for big frames).
    pub fn from_frame(frame: &DataFrame) -> Table {
        let columns: Vec<String> = frame.get_column_names().iter().map(|c| c.to_string()).collect();
        let rows = (0..frame.height())
            .map(|i| {
                frame
                    .columns()
                    .iter()
                    .map(|column| match column.get(i) {
                        Ok(AnyValue::Null) | Err(_) => Cell::Empty,
                        Ok(AnyValue::String(s)) => Cell::Text(s.to_string()),
                        Ok(AnyValue::Boolean(b)) => Cell::Text(b.to_string()),
                        Ok(v) if v.is_primitive_numeric() => {
                            v.extract::<f64>().map(Cell::Number).unwrap_or(Cell::Empty)
                        }
                        Ok(v) => Cell::Text(v.to_string()),
                    })
                    .collect()
            })
            .collect();
        Table::new(columns, rows)
    }

    pub fn with_caption(mut self, caption: impl Into<String>) -> Table {
        self.caption = Some(caption.into());
        self
    }

    /// Colours every numeric cell of the columns `from_column..` by its value on `scale`.
    pub fn with_colour_scale(mut self, scale: ColourScale, low: f64, high: f64, from_column: usize) -> Table {
        self.backgrounds = Some(
            self.rows
                .iter()
                .map(|row| {
                    row.iter()
                        .enumerate()
                        .map(|(j, cell)| match cell {
                            Cell::Number(v) if j >= from_column => Some(scale.colour(*v, low, high)),
                            _ => None,
                        })
                        .collect()
                })
                .collect(),
        );
        self
    }

    pub fn height(&self) -> usize {
        self.rows.len()
    }

    /// The numeric value at (`row`, `column name`), if any.
    pub fn number(&self, row: usize, column: &str) -> Option<f64> {
        let j = self.columns.iter().position(|c| c == column)?;
        match self.rows.get(row)?.get(j)? {
            Cell::Number(v) => Some(*v),
            _ => None,
        }
    }
}

impl ToHtml for Table {
    /// The table as an HTML fragment (text escaped).
    fn to_html(&self) -> String {
        let mut html = String::from("<table class=\"jukebox\" style=\"border-collapse:collapse;font-size:12px\">");
        if let Some(caption) = &self.caption {
            let _ = write!(html, "<caption style=\"font-weight:bold;text-align:left\">{}</caption>", escape(caption));
        }
        if !self.columns.is_empty() {
            html.push_str("<thead><tr>");
            for column in &self.columns {
                let _ =
                    write!(html, "<th style=\"padding:2px 6px;border-bottom:1px solid #888\">{}</th>", escape(column));
            }
            html.push_str("</tr></thead>");
        }
        html.push_str("<tbody>");
        for (i, row) in self.rows.iter().enumerate() {
            html.push_str("<tr>");
            for (j, cell) in row.iter().enumerate() {
                let background = self.backgrounds.as_ref().and_then(|b| b.get(i)?.get(j).copied().flatten());
                let align = if matches!(cell, Cell::Number(_)) { "right" } else { "left" };
                let style = match background {
                    Some(bg) => format!(
                        "padding:2px 6px;text-align:{align};vertical-align:top;background:{};color:{}",
                        bg.css(),
                        bg.text_colour().css()
                    ),
                    None => format!("padding:2px 6px;text-align:{align};vertical-align:top"),
                };
                let tag = if self.row_headers && j == 0 { "th" } else { "td" };
                let content = match cell {
                    Cell::Folded { summary, table } => {
                        format!("<details><summary>{}</summary>{}</details>", escape(summary), table.to_html())
                    }
                    other => escape(&other.to_string()),
                };
                let _ = write!(html, "<{tag} style=\"{style}\">{content}</{tag}>");
            }
            html.push_str("</tr>");
        }
        html.push_str("</tbody></table>");
        html
    }

    fn to_text(&self) -> String {
        self.to_string()
    }
}

/// Prints one value's representations in evcxr's envelope, one `(mime type, content)` block each:
/// what an `evcxr_display` method does. evcxr shows them as one result when the cell ends (one
/// output with a key per mime type); a frontend draws the richest it can.
pub fn show(blocks: &[(&str, &str)]) {
    let mut envelope = String::new();
    for (mime, content) in blocks {
        let _ = writeln!(envelope, "EVCXR_BEGIN_CONTENT {mime}\n{content}\nEVCXR_END_CONTENT");
    }
    // One print: nothing else the cell prints can land inside the envelope.
    print!("{envelope}");
}

/// A value that reads as an HTML fragment (text escaped with [`escape`]), and as plain text.
pub trait ToHtml {
    fn to_html(&self) -> String;

    /// The same content as plain text: what a terminal, `nbconvert --to markdown`, a log or a
    /// screen reader gets instead of the HTML. By default the HTML's text, one line per table row
    /// or block ([`text_of_html`]); types with a text layout of their own override it.
    fn to_text(&self) -> String {
        text_of_html(&self.to_html())
    }
}

/// `ToHtml` for types a notebook shows as their table: `shown_as_table!(Sweep, Comparison);` makes
/// each type's HTML its inherent `table()`'s, and its text that table's plain layout, so a type
/// that builds a [`Table`] writes no rendering of its own.
macro_rules! shown_as_table {
    ($($type:ty),+ $(,)?) => {$(
        impl $crate::display::ToHtml for $type {
            fn to_html(&self) -> String {
                $crate::display::ToHtml::to_html(&self.table())
            }

            fn to_text(&self) -> String {
                $crate::display::ToHtml::to_text(&self.table())
            }
        }
    )+};
}
pub(crate) use shown_as_table;

/// `ToHtml` for a type that is several outputs shown in turn (a report, then the record it made):
/// `shown_in_turn!(SavedModel: upload, registered);` makes its HTML, and its text, those of the
/// named fields one after another.
macro_rules! shown_in_turn {
    ($type:ty: $($field:ident),+ $(,)?) => {
        impl $crate::display::ToHtml for $type {
            fn to_html(&self) -> String {
                [$($crate::display::ToHtml::to_html(&self.$field)),+].join("\n")
            }

            fn to_text(&self) -> String {
                [$($crate::display::ToHtml::to_text(&self.$field)),+].join("\n")
            }
        }
    };
}
pub(crate) use shown_in_turn;

/// Shows a value as a cell's result in Jupyter: evcxr calls `evcxr_display` on a cell's last value
/// when the method resolves, which this trait makes it do for every [`ToHtml`] value, with its
/// `text/plain` alternative beside the `text/html`.
pub trait Show {
    fn evcxr_display(&self);
}

impl<T: ToHtml + ?Sized> Show for T {
    fn evcxr_display(&self) {
        show(&[("text/html", &self.to_html()), ("text/plain", &self.to_text())]);
    }
}

/// The text a reader sees in an HTML fragment of ours: tags dropped, entities decoded, a line per
/// table row, paragraph, heading, list item or `<br>`, table cells separated by two spaces.
/// Enough for the fragments this crate writes (no scripts, no comments); not a general HTML
/// renderer.
pub fn text_of_html(html: &str) -> String {
    let mut text = String::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        text.push_str(&html_escape::decode_html_entities(&rest[..start]));
        let Some(end) = rest[start..].find('>') else {
            rest = &rest[start..];
            break;
        };
        let tag = rest[start + 1..start + end].trim_start_matches('/').to_ascii_lowercase();
        let name = tag.split(|c: char| c.is_whitespace() || c == '/').next().unwrap_or("");
        let closing = rest[start + 1..].starts_with('/');
        match (name, closing) {
            ("td" | "th", true) => text.push_str("  "),
            (
                "tr" | "p" | "div" | "li" | "caption" | "pre" | "summary" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6",
                true,
            )
            | ("br", _) => {
                // A row's trailing cell separator is not text.
                let trimmed = text.trim_end_matches(' ').len();
                text.truncate(trimmed);
                text.push('\n');
            }
            _ => {}
        }
        rest = &rest[start + end + 1..];
    }
    text.push_str(&html_escape::decode_html_entities(rest));
    let lines: Vec<&str> = text.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()).collect();
    lines.join("\n")
}

/// How many rows a data frame ending a cell shows (its first ones); its shape says how many it has.
pub const FRAME_ROWS_SHOWN: usize = 10;

/// A polars `DataFrame` ending a cell renders as a table like every other: its shape in the
/// caption, its first [`FRAME_ROWS_SHOWN`] rows, numbers by [`format_number`]. Its plain text is
/// polars' own layout.
impl ToHtml for DataFrame {
    fn to_html(&self) -> String {
        let (rows, columns) = self.shape();
        let shown = rows.min(FRAME_ROWS_SHOWN);
        let caption = if shown < rows {
            format!("data frame: {} rows × {columns} columns (first {shown} shown)", jukebox_nn::thousands(rows))
        } else {
            format!("data frame: {} rows × {columns} columns", jukebox_nn::thousands(rows))
        };
        Table::from_frame(&self.head(Some(shown))).with_caption(caption).to_html()
    }

    fn to_text(&self) -> String {
        self.head(Some(FRAME_ROWS_SHOWN)).to_string()
    }
}

/// The network's Keras-like layer table, as preformatted text.
impl ToHtml for jukebox_nn::Summary {
    fn to_html(&self) -> String {
        format!("<pre>{}</pre>", escape(&self.to_string()))
    }

    fn to_text(&self) -> String {
        self.to_string()
    }
}

impl Plot {
    /// Renders inline in Jupyter (evcxr's display convention), with a text alternative naming
    /// the plot ([`Plot::description`]).
    pub fn evcxr_display(&self) {
        show(&[("image/svg+xml", &self.svg), ("text/plain", &self.description())]);
    }
}

/// Plain-text rendering, for the CLI and for `{:?}`-free printing in notebooks.
impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cells: Vec<Vec<String>> = self.rows.iter().map(|r| r.iter().map(|c| c.to_string()).collect()).collect();
        let width = cells.iter().map(Vec::len).chain([self.columns.len()]).max().unwrap_or(0);
        let widths: Vec<usize> = (0..width)
            .map(|j| {
                cells
                    .iter()
                    .chain([&self.columns])
                    .filter_map(|r| r.get(j))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        if let Some(caption) = &self.caption {
            writeln!(f, "{caption}")?;
        }
        let line = |f: &mut fmt::Formatter<'_>, values: &[String]| -> fmt::Result {
            let parts: Vec<String> = values.iter().zip(&widths).map(|(v, w)| format!("{v:>w$}")).collect();
            writeln!(f, "{}", parts.join("  ").trim_end())
        };
        if !self.columns.is_empty() {
            line(f, &self.columns)?;
        }
        for row in &cells {
            line(f, row)?;
        }
        Ok(())
    }
}

/// A block of text in a given language (YAML, JSON), shown as it is: a manifest or a request body
/// a reader may copy.
#[derive(Clone, Debug, PartialEq)]
pub struct Code {
    pub language: String,
    pub text: String,
}

impl Code {
    pub fn new(language: impl Into<String>, text: impl Into<String>) -> Code {
        Code { language: language.into(), text: text.into() }
    }
}

impl ToHtml for Code {
    fn to_html(&self) -> String {
        format!(
            "<pre class=\"jukebox language-{}\" style=\"font-size:12px;line-height:1.3\">{}</pre>",
            escape(&self.language),
            escape(&self.text)
        )
    }

    fn to_text(&self) -> String {
        self.text.clone()
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Escapes text for HTML element content and quoted attribute values (`& < > " '`): the
/// workbench's one escaper, `jukebox_protocol::html::escape`, which the registry server's page
/// uses as well.
pub fn escape(text: &str) -> String {
    jukebox_protocol::html::escape(text)
}

/// A column a table was asked about but does not have ([`Table::sort_by`]).
#[derive(Debug, thiserror::Error)]
#[error("the table has no column `{column}`; its columns are: {available}")]
pub struct NoSuchColumn {
    pub column: String,
    pub available: String,
}

/// Sorting, for questions such as "which country is most danceable?" (pandas' `sort_values`).
impl Table {
    /// The rows sorted by `column`, largest first (numbers by value, text alphabetically
    /// backwards, empty cells last); cell colours move with their rows.
    pub fn sort_by(self, column: &str) -> Result<Table, NoSuchColumn> {
        self.sorted(column, true)
    }

    /// The rows sorted by `column`, smallest first (empty cells last).
    pub fn sort_ascending_by(self, column: &str) -> Result<Table, NoSuchColumn> {
        self.sorted(column, false)
    }

    fn sorted(mut self, column: &str, descending: bool) -> Result<Table, NoSuchColumn> {
        let index = self
            .columns
            .iter()
            .position(|c| c == column)
            .ok_or_else(|| NoSuchColumn { column: column.to_string(), available: self.columns.join(", ") })?;
        let mut order: Vec<usize> = (0..self.rows.len()).collect();
        let rows = &self.rows;
        order.sort_by(|&a, &b| {
            let (x, y) = (rows[a].get(index), rows[b].get(index));
            let rank = |c: Option<&Cell>| matches!(c, None | Some(Cell::Empty));
            rank(x).cmp(&rank(y)).then_with(|| {
                let ordering = match (x, y) {
                    (Some(Cell::Number(x)), Some(Cell::Number(y))) => x.total_cmp(y),
                    (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
                    _ => std::cmp::Ordering::Equal,
                };
                if descending {
                    ordering.reverse()
                } else {
                    ordering
                }
            })
        });
        let mut taken: Vec<Option<Vec<Cell>>> = std::mem::take(&mut self.rows).into_iter().map(Some).collect();
        self.rows = order.iter().map(|&i| taken[i].take().unwrap_or_default()).collect();
        if let Some(backgrounds) = self.backgrounds.take() {
            let mut taken: Vec<Option<Vec<Option<Rgb>>>> = backgrounds.into_iter().map(Some).collect();
            self.backgrounds =
                Some(order.iter().map(|&i| taken.get_mut(i).and_then(Option::take).unwrap_or_default()).collect());
        }
        self.caption = Some(match self.caption.take() {
            Some(caption) => {
                format!("{caption}, sorted by {column}{}", if descending { " (largest first)" } else { "" })
            }
            None => format!("sorted by {column}{}", if descending { " (largest first)" } else { "" }),
        });
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_and_colours() {
        let t = Table::new(vec!["name".into(), "r".into()], vec![vec!["<b>&".into(), 0.5.into()]]).with_colour_scale(
            ColourScale::BLUES,
            0.0,
            1.0,
            1,
        );
        let html = t.to_html();
        assert!(html.contains("&lt;b&gt;&amp;"));
        assert!(html.contains("background:#"));
        assert!(html.contains(">0.5000<"));
        assert_eq!(t.number(0, "r"), Some(0.5));
    }

    #[test]
    fn numbers_are_plain_decimals_inside_the_readable_range() {
        let cases = [
            (193_620.351, "193620.35"),
            (0.342, "0.3420"),
            (-6.1234567, "-6.1235"),
            (120.007, "120.0070"),
            (0.00352, "0.00352"),
            (0.001, "0.001"),
            (0.0001, "0.0001"),
            (9_999_999.5, "9999999.50"),
            (19_699.0, "19699"),
            (-0.0, "0"),
            (7.2168e-5, "7.22e-5"),
            (1.2e8 + 0.5, "1.2e8"),
            (-3.0e-7, "-3e-7"),
            (f64::INFINITY, "inf"),
        ];
        for (value, written) in cases {
            assert_eq!(format_number(value), written, "{value:e}");
        }
        // Every size inside the range reads as a plain decimal.
        let mut v = PLAIN_NUMBER_MIN;
        while v < PLAIN_NUMBER_MAX {
            for sign in [1.0, -1.0] {
                let text = format_number(sign * v * 1.2345);
                if v * 1.2345 < PLAIN_NUMBER_MAX {
                    assert!(!text.contains('e'), "{} written as {text}", sign * v * 1.2345);
                }
            }
            v *= 3.1;
        }
    }
}

#[cfg(test)]
mod sort_tests {
    use super::*;

    #[test]
    fn sorting_moves_whole_rows_and_names_a_missing_column() {
        let table = Table::new(
            vec!["country".into(), "danceability".into()],
            vec![
                vec!["AR".into(), 0.7.into()],
                vec!["JP".into(), Cell::Empty],
                vec!["BR".into(), 0.8.into()],
                vec!["DE".into(), 0.6.into()],
            ],
        );
        let sorted = table.clone().sort_by("danceability").unwrap();
        let order: Vec<String> = sorted.rows.iter().map(|r| r[0].to_string()).collect();
        assert_eq!(order, ["BR", "AR", "DE", "JP"]);
        assert_eq!(sorted.caption.as_deref(), Some("sorted by danceability (largest first)"));
        let ascending = table.clone().sort_ascending_by("danceability").unwrap();
        let order: Vec<String> = ascending.rows.iter().map(|r| r[0].to_string()).collect();
        assert_eq!(order, ["DE", "AR", "BR", "JP"]);
        let error = table.sort_by("energy").unwrap_err();
        assert_eq!(error.to_string(), "the table has no column `energy`; its columns are: country, danceability");
    }
}
