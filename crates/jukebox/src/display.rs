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
//! [`escape`] is the one HTML escaper (the `html-escape` crate, which the registry server's page
//! uses as well).
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

/// An RGB colour, used for cell backgrounds and heatmaps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    fn css(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
    /// Black or white, whichever reads better on this background.
    pub fn text_colour(self) -> Rgb {
        let luma = 0.299 * self.0 as f64 + 0.587 * self.1 as f64 + 0.114 * self.2 as f64;
        if luma > 140.0 {
            Rgb(0, 0, 0)
        } else {
            Rgb(255, 255, 255)
        }
    }
}

/// A colour scale interpolated between evenly spaced stops (ColorBrewer palettes).
#[derive(Clone, Copy, Debug)]
pub struct ColourScale {
    stops: &'static [Rgb],
}

impl ColourScale {
    /// Red (low) - yellow - blue (high), for correlations from -1 to 1.
    pub const RED_YELLOW_BLUE: ColourScale = ColourScale {
        stops: &[
            Rgb(165, 0, 38),
            Rgb(215, 48, 39),
            Rgb(244, 109, 67),
            Rgb(253, 174, 97),
            Rgb(254, 224, 144),
            Rgb(255, 255, 191),
            Rgb(224, 243, 248),
            Rgb(171, 217, 233),
            Rgb(116, 173, 209),
            Rgb(69, 117, 180),
            Rgb(49, 54, 149),
        ],
    };
    /// White (low) to dark blue (high), for counts such as a confusion matrix.
    pub const BLUES: ColourScale = ColourScale {
        stops: &[
            Rgb(247, 251, 255),
            Rgb(222, 235, 247),
            Rgb(198, 219, 239),
            Rgb(158, 202, 225),
            Rgb(107, 174, 214),
            Rgb(66, 146, 198),
            Rgb(33, 113, 181),
            Rgb(8, 81, 156),
            Rgb(8, 48, 107),
        ],
    };

    /// The colour of `value` on a scale from `low` to `high` (clamped).
    pub fn colour(&self, value: f64, low: f64, high: f64) -> Rgb {
        let t = if high > low && value.is_finite() { ((value - low) / (high - low)).clamp(0.0, 1.0) } else { 0.5 };
        let position = t * (self.stops.len() - 1) as f64;
        let i = (position.floor() as usize).min(self.stops.len() - 2);
        let f = position - i as f64;
        let (a, b) = (self.stops[i], self.stops[i + 1]);
        let mix = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * f).round() as u8;
        Rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }
}

/// One table cell.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    Number(f64),
    Empty,
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
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub caption: Option<String>,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    /// Same shape as `rows` when present.
    pub backgrounds: Option<Vec<Vec<Option<Rgb>>>>,
}

impl Table {
    pub fn new(columns: Vec<String>, rows: Vec<Vec<Cell>>) -> Table {
        Table { columns, rows, ..Default::default() }
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
        html.push_str("<thead><tr>");
        for column in &self.columns {
            let _ = write!(html, "<th style=\"padding:2px 6px;border-bottom:1px solid #888\">{}</th>", escape(column));
        }
        html.push_str("</tr></thead><tbody>");
        for (i, row) in self.rows.iter().enumerate() {
            html.push_str("<tr>");
            for (j, cell) in row.iter().enumerate() {
                let background = self.backgrounds.as_ref().and_then(|b| b.get(i)?.get(j).copied().flatten());
                let align = if matches!(cell, Cell::Number(_)) { "right" } else { "left" };
                let style = match background {
                    Some(bg) => format!(
                        "padding:2px 6px;text-align:{align};background:{};color:{}",
                        bg.css(),
                        bg.text_colour().css()
                    ),
                    None => format!("padding:2px 6px;text-align:{align}"),
                };
                let _ = write!(html, "<td style=\"{style}\">{}</td>", escape(&cell.to_string()));
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
            ("tr" | "p" | "div" | "li" | "caption" | "pre" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6", true)
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

/// What starts a live display line on stdout; `kernel/kernel_relay.py` reads the same prefix.
pub const LIVE_DISPLAY_MARKER: &str = "JUKEBOX_DISPLAY ";

/// An output that a running cell redraws in place, such as training progress.
///
/// evcxr, the Rust kernel, forwards what a cell prints line by line and cannot update an output,
/// so our kernel launcher puts a small relay between Jupyter and evcxr (`kernel/kernel_relay.py`)
/// and sets `JUKEBOX_DISPLAY_UPDATES`. Each [`LiveDisplay::show`] prints one line,
/// `JUKEBOX_DISPLAY {"display_id", "update", "data": {mime: content}}`, which the relay sends to
/// Jupyter as `display_data` (the first) or `update_display_data` (the next ones): JupyterLab
/// redraws the output, and papermill saves its last state in the notebook.
/// [`LiveDisplay::start`] is `None` where no relay listens (a terminal, a log, another kernel).
///
/// A caller that has something new often (every batch, every chunk of a download) asks
/// [`LiveDisplay::redraw_due`] first, so the output is redrawn at most every
/// [`LiveDisplay::REDRAW_INTERVAL`] whoever draws it.
#[derive(Debug)]
pub struct LiveDisplay {
    id: String,
    last_shown: Option<std::time::Instant>,
}

impl LiveDisplay {
    /// How often a live output is redrawn at most, between the changes that must show at once
    /// (an epoch's line, the end): often enough to look alive, rarely enough that the browser
    /// and the saved notebook do not churn.
    pub const REDRAW_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

    /// A new live output, if the kernel can show one.
    pub fn start() -> Option<LiveDisplay> {
        if std::env::var_os(jukebox_protocol::env::DISPLAY_UPDATES).is_none_or(|v| v != "1") {
            return None;
        }
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        // Unique across the kernel's cell processes (one per restart) and across cells.
        let id = format!(
            "jukebox-{}-{}-{}",
            std::process::id(),
            started.as_nanos(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        Some(LiveDisplay { id, last_shown: None })
    }

    /// Whether a routine redraw is due: never shown yet, or last shown at least
    /// [`LiveDisplay::REDRAW_INTERVAL`] ago.
    pub fn redraw_due(&self) -> bool {
        self.last_shown.is_none_or(|at| at.elapsed() >= Self::REDRAW_INTERVAL)
    }

    /// Shows `text` (plain text, for logs and saved notebooks) and `html` (what JupyterLab
    /// draws), replacing what this output showed before.
    pub fn show(&mut self, text: &str, html: &str) {
        let line = serde_json::json!({
            "display_id": self.id,
            "update": self.last_shown.is_some(),
            "data": { "text/plain": text, "text/html": html },
        });
        // serde_json writes no raw newline, so the message stays one line.
        println!("{LIVE_DISPLAY_MARKER}{line}");
        self.last_shown = Some(std::time::Instant::now());
    }
}

/// Plain-text rendering, for the CLI and for `{:?}`-free printing in notebooks.
impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cells: Vec<Vec<String>> = self.rows.iter().map(|r| r.iter().map(|c| c.to_string()).collect()).collect();
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|j| {
                cells
                    .iter()
                    .filter_map(|r| r.get(j))
                    .map(|s| s.chars().count())
                    .chain([self.columns[j].chars().count()])
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
        line(f, &self.columns)?;
        for row in &cells {
            line(f, row)?;
        }
        Ok(())
    }
}

/// An SVG image.
#[derive(Clone, Debug)]
pub struct Plot {
    pub svg: String,
}

/// The widest a plot is shown, in pixels: JupyterLab's output area is about 968 px wide beside the
/// prompt, so a wider image has its right edge cut off.
pub const MAX_PLOT_WIDTH: u32 = 960;

/// Line colours for plots with several series, in order: distinct at a glance on white, and none
/// pale (no yellow), after Tableau's palette with its olive replaced by darker tones.
pub const SERIES_COLOURS: [Rgb; 12] = [
    Rgb(31, 119, 180),
    Rgb(255, 127, 14),
    Rgb(44, 160, 44),
    Rgb(214, 39, 40),
    Rgb(148, 103, 189),
    Rgb(140, 86, 75),
    Rgb(227, 119, 194),
    Rgb(102, 102, 102),
    Rgb(23, 190, 207),
    Rgb(0, 0, 128),
    Rgb(128, 128, 0),
    Rgb(0, 100, 0),
];

/// The colour of series `i` (0-based) from [`SERIES_COLOURS`], repeating after 12.
pub fn series_colour(i: usize) -> plotters::style::RGBColor {
    let Rgb(r, g, b) = SERIES_COLOURS[i % SERIES_COLOURS.len()];
    plotters::style::RGBColor(r, g, b)
}

/// Draws a legend in its own area (beside a chart, so it never covers a curve): one row per
/// `(label, colour, line width)`, a short line then the label, from the top left.
pub fn draw_legend(
    area: &plotters::drawing::DrawingArea<plotters::prelude::SVGBackend, plotters::coord::Shift>,
    entries: &[(String, plotters::style::RGBColor, u32)],
    font_size: u32,
) -> Result<(), PlotError> {
    use plotters::prelude::*;
    let row = font_size as i32 + 6;
    for (i, (label, colour, width)) in entries.iter().enumerate() {
        let y = 12 + i as i32 * row;
        area.draw(&PathElement::new(vec![(4, y), (26, y)], colour.stroke_width(*width)))
            .map_err(|e| PlotError(format!("{e:?}")))?;
        let style = ("sans-serif", font_size).into_font().color(&BLACK).pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Left,
            plotters::style::text_anchor::VPos::Center,
        ));
        area.draw(&Text::new(label.clone(), (32, y), style)).map_err(|e| PlotError(format!("{e:?}")))?;
    }
    Ok(())
}

/// Rewrites the root `<svg>` element of a `width` x `height` drawing so that it is shown at most
/// [`MAX_PLOT_WIDTH`] wide: the viewBox keeps the drawing's own coordinates and the shown size is
/// scaled down proportionally, so nothing is cut and text stays in place.
fn fit_width(svg: String, width: u32, height: u32) -> String {
    let Some(start) = svg.find("<svg") else { return svg };
    let Some(end) = svg[start..].find('>').map(|end| start + end) else { return svg };
    let (shown_width, shown_height) = if width > MAX_PLOT_WIDTH {
        (MAX_PLOT_WIDTH, (height as u64 * MAX_PLOT_WIDTH as u64).div_ceil(width as u64) as u32)
    } else {
        (width, height)
    };
    let header = format!(
        "<svg width=\"{shown_width}\" height=\"{shown_height}\" viewBox=\"0 0 {width} {height}\" \
         xmlns=\"http://www.w3.org/2000/svg\">"
    );
    format!("{}{header}{}", &svg[..start], &svg[end + 1..])
}

/// The shown width of an SVG drawing: its root element's `width` attribute in pixels.
pub fn svg_width(svg: &str) -> Option<u32> {
    let root = &svg[svg.find("<svg")?..];
    let root = &root[..root.find('>')?];
    let start = root.find(" width=\"")? + " width=\"".len();
    let digits: String = root[start..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl Plot {
    /// Draws with plotters on an SVG canvas of `width` x `height` pixels; a canvas wider than
    /// [`MAX_PLOT_WIDTH`] is shown scaled down to it.
    pub fn draw<E: std::fmt::Debug>(
        width: u32,
        height: u32,
        draw: impl FnOnce(
            &plotters::drawing::DrawingArea<plotters::prelude::SVGBackend, plotters::coord::Shift>,
        ) -> Result<(), E>,
    ) -> Result<Plot, PlotError> {
        use plotters::prelude::*;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| PlotError(format!("{e:?}")))?;
            draw(&root).map_err(|e| PlotError(format!("{e:?}")))?;
            root.present().map_err(|e| PlotError(format!("{e:?}")))?;
        }
        Ok(Plot { svg: fit_width(svg, width, height) })
    }

    /// Writes the SVG to a file.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> std::io::Result<()> {
        std::fs::write(path, &self.svg)
    }

    /// Renders inline in Jupyter (evcxr's display convention), with a text alternative naming
    /// the plot ([`Plot::description`]).
    pub fn evcxr_display(&self) {
        show(&[("image/svg+xml", &self.svg), ("text/plain", &self.description())]);
    }

    /// What the plot shows, in words, for readers without the image: its caption and axis labels
    /// (the SVG's texts up to the first tick label), e.g. `plot: loss by epoch (epoch, loss)`.
    pub fn description(&self) -> String {
        let texts: Vec<String> = self
            .svg
            .split("<text")
            .skip(1)
            .filter_map(|part| {
                let body = &part[part.find('>')? + 1..part.find("</text>")?];
                Some(html_escape::decode_html_entities(body.trim()).into_owned())
            })
            .filter(|t| !t.is_empty())
            .collect();
        // Tick labels are numbers; the words are the caption, the axis names and the legend.
        let words: Vec<&str> = texts
            .iter()
            .map(String::as_str)
            .filter(|t| t.parse::<f64>().is_err() && t.chars().any(char::is_alphabetic))
            .take(8)
            .collect();
        match words.split_first() {
            Some((caption, [])) => format!("plot: {caption}"),
            Some((caption, rest)) => format!("plot: {caption} ({})", rest.join(", ")),
            None => "plot".to_string(),
        }
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

/// A plot could not be drawn (plotters' own error, as text).
#[derive(Debug, thiserror::Error)]
#[error("drawing failed: {0}")]
pub struct PlotError(pub String);

/// Escapes text for HTML element content and quoted attribute values (`& < > " '`).
pub fn escape(text: &str) -> String {
    html_escape::encode_quoted_attribute(text).into_owned()
}

/// A heatmap of a square or rectangular matrix with labelled axes and each value written in its
/// cell. Used for correlations (red-yellow-blue) and the confusion matrix (blues).
pub fn heatmap(
    title: &str,
    row_labels: &[String],
    column_labels: &[String],
    values: &[Vec<f64>],
    scale: ColourScale,
    (low, high): (f64, f64),
    value_format: impl Fn(f64) -> String,
) -> Result<Plot, PlotError> {
    use plotters::prelude::*;
    let (n_rows, n_cols) = (row_labels.len(), column_labels.len());
    let cell = if n_rows.max(n_cols) > 30 { 14 } else { 44 };
    let label_space =
        12 + 7 * row_labels.iter().chain(column_labels).map(|l| l.chars().count()).max().unwrap_or(4) as u32;
    let width = label_space + cell * n_cols as u32 + 30;
    let height = label_space + cell * n_rows as u32 + 50;
    let font_size = if cell > 20 { 11 } else { 8 };
    Plot::draw(width, height, |root| {
        root.draw(&Text::new(title.to_string(), (10, 8), ("sans-serif", 16).into_font()))?;
        let (x0, y0) = (label_space as i32, 40i32);
        for (i, row) in values.iter().enumerate().take(n_rows) {
            for (j, value) in row.iter().enumerate().take(n_cols) {
                let colour = scale.colour(*value, low, high);
                let (x, y) = (x0 + j as i32 * cell as i32, y0 + i as i32 * cell as i32);
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell as i32, y + cell as i32)],
                    RGBColor(colour.0, colour.1, colour.2).filled(),
                ))?;
                let text = value_format(*value);
                if !text.is_empty() {
                    let ink = colour.text_colour();
                    let style = ("sans-serif", font_size).into_font().color(&RGBColor(ink.0, ink.1, ink.2)).pos(
                        plotters::style::text_anchor::Pos::new(
                            plotters::style::text_anchor::HPos::Center,
                            plotters::style::text_anchor::VPos::Center,
                        ),
                    );
                    root.draw(&Text::new(text, (x + cell as i32 / 2, y + cell as i32 / 2), style))?;
                }
            }
        }
        let label_font = ("sans-serif", font_size + 1).into_font().color(&BLACK);
        for (i, label) in row_labels.iter().enumerate() {
            let style = label_font.clone().pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Right,
                plotters::style::text_anchor::VPos::Center,
            ));
            root.draw(&Text::new(label.clone(), (x0 - 4, y0 + i as i32 * cell as i32 + cell as i32 / 2), style))?;
        }
        for (j, label) in column_labels.iter().enumerate() {
            let style =
                label_font.clone().transform(FontTransform::Rotate90).pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Left,
                    plotters::style::text_anchor::VPos::Center,
                ));
            root.draw(&Text::new(
                label.clone(),
                (x0 + j as i32 * cell as i32 + cell as i32 / 2, y0 + n_rows as i32 * cell as i32 + 4),
                style,
            ))?;
        }
        Ok::<(), DrawingAreaErrorKind<std::io::Error>>(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_scale_ends_and_middle() {
        let s = ColourScale::RED_YELLOW_BLUE;
        assert_eq!(s.colour(-1.0, -1.0, 1.0), Rgb(165, 0, 38));
        assert_eq!(s.colour(1.0, -1.0, 1.0), Rgb(49, 54, 149));
        assert_eq!(s.colour(0.0, -1.0, 1.0), Rgb(255, 255, 191));
        assert_eq!(s.colour(5.0, -1.0, 1.0), Rgb(49, 54, 149), "clamped");
    }

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
    fn heatmap_writes_values_in_cells() {
        let labels = vec!["a".to_string(), "b".to_string()];
        let plot = heatmap(
            "t",
            &labels,
            &labels,
            &[vec![1.0, -0.25], vec![-0.25, 1.0]],
            ColourScale::RED_YELLOW_BLUE,
            (-1.0, 1.0),
            |v| format!("{v:.2}"),
        )
        .unwrap();
        assert!(plot.svg.starts_with("<svg"));
        assert!(plot.svg.contains("\n-0.25\n"), "{}", &plot.svg[..400.min(plot.svg.len())]);
        assert_eq!(plot.svg.matches("<rect").count(), 5, "background + 4 cells");
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

    #[test]
    fn plots_wider_than_the_output_area_are_shown_scaled_down() {
        let wide = Plot::draw(1200, 300, |_| Ok::<(), ()>(())).unwrap();
        assert_eq!(svg_width(&wide.svg), Some(MAX_PLOT_WIDTH));
        assert!(wide.svg.contains("height=\"240\""), "height scaled with the width: {}", &wide.svg[..200]);
        assert!(wide.svg.contains("viewBox=\"0 0 1200 300\""), "the drawing keeps its coordinates");
        let narrow = Plot::draw(400, 300, |_| Ok::<(), ()>(())).unwrap();
        assert_eq!(svg_width(&narrow.svg), Some(400));
        assert!(narrow.svg.starts_with("<svg") && narrow.svg.contains("viewBox=\"0 0 400 300\""));
        assert_eq!(narrow.svg.matches("<svg").count(), 1);
    }

    #[test]
    fn a_live_display_is_redrawn_at_most_every_interval() {
        let mut live = LiveDisplay { id: "test".into(), last_shown: None };
        assert!(live.redraw_due(), "the first drawing is always due");
        live.show("first", "<b>first</b>");
        assert!(!live.redraw_due(), "just shown");
        live.last_shown = Some(std::time::Instant::now() - LiveDisplay::REDRAW_INTERVAL);
        assert!(live.redraw_due(), "an interval later");
    }
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
