//! What the server answered: one song's probability per country, the top countries as a table
//! or a bar chart, and a batch of them.

use super::artifacts::ServedVersion;
use crate::data::columns::COUNTRY;
use crate::display::{escape, Cell, Plot, Table, ToHtml};

/// One song's probability per country (label encoder order).
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub song: String,
    pub artists: Option<String>,
    /// The model version that answered (the one the request named).
    pub model: Option<ServedVersion>,
    pub probabilities: Vec<(String, f32)>,
}

impl Prediction {
    /// The most likely country and its probability (argmax; the first wins a tie).
    pub fn top(&self) -> (&str, f32) {
        let (code, p) = self
            .probabilities
            .iter()
            .fold(None::<&(String, f32)>, |best, item| match best {
                Some(b) if b.1 >= item.1 => Some(b),
                _ => Some(item),
            })
            .expect("a prediction has at least one class");
        (code.as_str(), *p)
    }

    /// The `k` most likely countries, most likely first.
    pub fn top_k(&self, k: usize) -> Vec<(String, f32)> {
        let mut sorted = self.probabilities.clone();
        sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
        sorted.truncate(k);
        sorted
    }

    /// The top `k` countries as a table.
    pub fn table(&self, k: usize) -> Table {
        let rows = self
            .top_k(k)
            .into_iter()
            .enumerate()
            .map(|(i, (code, p))| vec![Cell::Number((i + 1) as f64), Cell::Text(code), Cell::Number(p as f64)])
            .collect();
        let title = match &self.artists {
            Some(a) => format!("{} ({a})", self.song),
            None => self.song.clone(),
        };
        let by = self.model.as_ref().map(|m| format!(", answered by {m}")).unwrap_or_default();
        Table::new(vec!["rank".into(), COUNTRY.into(), "probability".into()], rows)
            .with_caption(format!("Most likely countries for {title}{by}"))
    }

    /// Several predictions of the same song side by side (e.g. one per model version), each
    /// labelled: the union of their top `k` countries, ordered by the first prediction.
    pub fn side_by_side(labelled: &[(String, Prediction)], k: usize) -> Table {
        let mut countries: Vec<String> = Vec::new();
        for (_, prediction) in labelled {
            for (code, _) in prediction.top_k(k) {
                if !countries.contains(&code) {
                    countries.push(code);
                }
            }
        }
        let probability =
            |p: &Prediction, code: &str| p.probabilities.iter().find(|(c, _)| c == code).map(|(_, v)| *v as f64);
        if let Some((_, first)) = labelled.first() {
            countries
                .sort_by(|a, b| probability(first, b).unwrap_or(0.0).total_cmp(&probability(first, a).unwrap_or(0.0)));
        }
        let mut columns = vec![COUNTRY.to_string()];
        columns.extend(labelled.iter().map(|(label, _)| format!("probability ({label})")));
        let rows = countries
            .iter()
            .map(|code| {
                let mut row = vec![Cell::Text(code.clone())];
                row.extend(labelled.iter().map(|(_, p)| probability(p, code).map(Cell::Number).unwrap_or(Cell::Empty)));
                row
            })
            .collect();
        let song = labelled.first().map(|(_, p)| p.song.clone()).unwrap_or_default();
        let tops = labelled.iter().map(|(label, p)| format!("{label}: {}", p.top().0)).collect::<Vec<_>>().join(", ");
        Table::new(columns, rows).with_caption(format!("{song}: the top {k} countries of each ({tops})"))
    }

    /// A bar chart of the probability per country (SVG, no system fonts needed).
    pub fn chart(&self) -> Result<Plot, crate::display::PlotError> {
        use plotters::prelude::*;
        let n = self.probabilities.len();
        let top = self.probabilities.iter().map(|p| p.1).fold(0f32, f32::max).max(1e-6) as f64;
        let title = format!("Prediction over countries: {}", self.song);
        let labels: Vec<String> = self.probabilities.iter().map(|p| p.0.clone()).collect();
        let values: Vec<f64> = self.probabilities.iter().map(|p| p.1 as f64).collect();
        let best = self.top().0.to_string();
        Plot::draw(960, 420, move |root| {
            let mut chart = ChartBuilder::on(root)
                .caption(title, ("sans-serif", 18))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d((0..n).into_segmented(), 0f64..top * 1.1)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(n)
                .x_label_formatter(&|x| match x {
                    SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                    _ => String::new(),
                })
                .x_label_style(("sans-serif", 9).into_font().transform(FontTransform::Rotate90))
                .y_desc("probability")
                .draw()?;
            chart.draw_series(values.iter().enumerate().map(|(i, &v)| {
                let colour = if labels[i] == best { RGBColor(214, 39, 40) } else { RGBColor(31, 119, 180) };
                let mut bar =
                    Rectangle::new([(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), v)], colour.filled());
                bar.set_margin(0, 0, 1, 1);
                bar
            }))?;
            Ok::<(), DrawingAreaErrorKind<std::io::Error>>(())
        })
    }
}

impl ToHtml for Prediction {
    /// The top-5 table as HTML, with the most likely country spelled out first.
    fn to_html(&self) -> String {
        let (code, p) = self.top();
        format!(
            "<p>The most likely country for <b>{}</b> is <b>{}</b> ({:.1}%).</p>{}",
            escape(&self.song),
            escape(code),
            p * 100.0,
            self.table(5).to_html()
        )
    }
}

/// Predictions for a batch of songs.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions(pub Vec<Prediction>);

impl Predictions {
    /// One row per song: top country, its probability, and the next two.
    pub fn table(&self) -> Table {
        let rows = self
            .0
            .iter()
            .map(|p| {
                let top = p.top_k(3);
                let rest =
                    top.iter().skip(1).map(|(c, v)| format!("{c} {:.1}%", v * 100.0)).collect::<Vec<_>>().join(", ");
                vec![
                    Cell::Text(p.song.clone()),
                    p.artists.clone().map(Cell::Text).unwrap_or(Cell::Empty),
                    Cell::Text(top[0].0.clone()),
                    Cell::Number(top[0].1 as f64),
                    Cell::Text(rest),
                ]
            })
            .collect();
        Table::new(vec!["song".into(), "artists".into(), COUNTRY.into(), "probability".into(), "next".into()], rows)
    }
}

impl ToHtml for Predictions {
    fn to_html(&self) -> String {
        self.table().to_html()
    }
}
