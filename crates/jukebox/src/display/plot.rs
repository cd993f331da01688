//! Plots as SVG: [`Plot::draw`] runs a plotters drawing on an SVG canvas (no system fonts needed)
//! and shows it at most [`MAX_PLOT_WIDTH`] wide; [`draw_legend`] puts a legend beside a chart;
//! [`heatmap`] draws a labelled matrix with each value in its cell (correlations, the confusion
//! matrix). How a plot is shown in a notebook (`Plot::evcxr_display`) is `display`'s, beside every
//! other output's envelope.

use super::colour::ColourScale;

/// An SVG image.
#[derive(Clone, Debug)]
pub struct Plot {
    pub svg: String,
}

/// The widest a plot is shown, in pixels: JupyterLab's output area is about 968 px wide beside the
/// prompt, so a wider image has its right edge cut off.
pub const MAX_PLOT_WIDTH: u32 = 960;

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

/// A plot could not be drawn (plotters' own error, as text).
#[derive(Debug, thiserror::Error)]
#[error("drawing failed: {0}")]
pub struct PlotError(pub String);

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
}
