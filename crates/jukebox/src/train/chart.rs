//! The line chart of a training result: values per epoch, whole epochs on the x axis.
//!
//! A trained network's history (`TrainedModel::history_plot`:
//! loss and accuracy side by side) and a sweep's runs (`Sweep::validation_plot` in
//! [`crate::refine`]: one line per run) are the same picture: one or more panels, each with
//! lines of one value per epoch, and a legend in its own strip to the right so it never covers
//! a curve. [`EpochChart`] draws that picture; its callers only say what goes in it.
//!
//! The x axis runs over whole epochs, from 0 to the last epoch + 1 (a margin either side),
//! labelled only at the epochs themselves ([`epoch_label`]); each panel's y axis spans its
//! finite values with a tenth of their range as margin.

use plotters::prelude::*;

use crate::display::{draw_legend, Plot, PlotError, MAX_PLOT_WIDTH};

/// One line of a panel: a value per epoch (epoch 1 first), its colour and stroke width.
pub(crate) struct Line<'a> {
    pub values: &'a [f32],
    pub colour: RGBColor,
    pub width: u32,
}

/// One chart: its title, the y axis's name (if any) and its lines, drawn in order (the last on
/// top).
pub(crate) struct Panel<'a> {
    pub title: String,
    pub y_desc: Option<&'a str>,
    pub lines: Vec<Line<'a>>,
}

/// Panels side by side, [`MAX_PLOT_WIDTH`] wide, with their legend to the right.
pub(crate) struct EpochChart<'a> {
    /// Height of the drawing (tall enough for the legend).
    pub height: u32,
    /// Height of the panels, at most `height` (a long legend may need a taller drawing).
    pub panel_height: u32,
    pub panels: Vec<Panel<'a>>,
    /// Font size of the panels' titles.
    pub title_size: u32,
    /// Width of the y axis's labels.
    pub y_label_width: u32,
    /// Whether each value gets a dot (few lines) or only the line (many).
    pub points: bool,
    /// (label, colour, stroke width) per legend row.
    pub legend: Vec<(String, RGBColor, u32)>,
    pub legend_width: u32,
    pub legend_font: u32,
    /// Space above the legend's first row.
    pub legend_top: u32,
}

impl EpochChart<'_> {
    pub(crate) fn draw(&self) -> Result<Plot, PlotError> {
        let epochs = self.panels.iter().flat_map(|p| p.lines.iter().map(|l| l.values.len())).max().unwrap_or(1).max(1);
        let epochs = epochs as i32;
        let label = |x: &i32| epoch_label(*x, epochs);
        Plot::draw(MAX_PLOT_WIDTH, self.height, |root| -> Result<(), String> {
            let err = |e: &dyn std::fmt::Debug| format!("{e:?}");
            let charts_width = MAX_PLOT_WIDTH - self.legend_width;
            let (charts, legend) = root.split_horizontally(charts_width);
            let charts = charts.shrink((0, 0), (charts_width, self.panel_height.min(self.height)));
            let areas = charts.split_evenly((1, self.panels.len().max(1)));
            for (area, panel) in areas.iter().zip(&self.panels) {
                let values = panel.lines.iter().flat_map(|l| l.values.iter().copied()).filter(|v| v.is_finite());
                let (low, high) = values.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
                let (low, high) = if low.is_finite() { (low as f64, high as f64) } else { (0.0, 1.0) };
                let pad = ((high - low) * 0.1).max(1e-3);
                let mut chart = ChartBuilder::on(area)
                    .caption(&panel.title, ("sans-serif", self.title_size))
                    .margin(10)
                    .x_label_area_size(35)
                    .y_label_area_size(self.y_label_width)
                    .build_cartesian_2d(0..epochs + 1, (low - pad)..(high + pad))
                    .map_err(|e| err(&e))?;
                let mut mesh = chart.configure_mesh();
                mesh.x_desc("epoch").x_labels((epochs + 2).min(12) as usize);
                if let Some(y_desc) = panel.y_desc {
                    mesh.y_desc(y_desc);
                }
                mesh.x_label_formatter(&label).draw().map_err(|e| err(&e))?;
                for line in &panel.lines {
                    let points = line.values.iter().enumerate().map(|(i, &v)| (i as i32 + 1, v as f64));
                    let series = LineSeries::new(points, line.colour.stroke_width(line.width));
                    let series = if self.points { series.point_size(3) } else { series };
                    chart.draw_series(series).map_err(|e| err(&e))?;
                }
            }
            draw_legend(&legend.margin(self.legend_top, 0, 0, 0), &self.legend, self.legend_font).map_err(|e| err(&e))
        })
    }
}

/// The label of tick `x` on an integer epoch axis running from 0 to `epochs + 1`: the epoch
/// number, or nothing at the margins.
pub(crate) fn epoch_label(x: i32, epochs: i32) -> String {
    if (1..=epochs).contains(&x) {
        x.to_string()
    } else {
        String::new()
    }
}
