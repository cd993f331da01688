//! Colours of tables and plots: [`Rgb`], the ColorBrewer scales cells and heatmaps are coloured
//! with ([`ColourScale`]), and the line colours of plots with several series ([`SERIES_COLOURS`]).
//! Kept apart from the drawing so a table can be coloured without plotters and a plot without tables.

/// An RGB colour, used for cell backgrounds and heatmaps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// The colour as CSS writes it (`#a50026`).
    pub fn css(self) -> String {
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
    #[rustfmt::skip]
    pub const RED_YELLOW_BLUE: ColourScale = ColourScale {
        stops: &[
            Rgb(165, 0, 38), Rgb(215, 48, 39), Rgb(244, 109, 67), Rgb(253, 174, 97), Rgb(254, 224, 144),
            Rgb(255, 255, 191),
            Rgb(224, 243, 248), Rgb(171, 217, 233), Rgb(116, 173, 209), Rgb(69, 117, 180), Rgb(49, 54, 149),
        ],
    };
    /// White (low) to dark blue (high), for counts such as a confusion matrix.
    #[rustfmt::skip]
    pub const BLUES: ColourScale = ColourScale {
        stops: &[
            Rgb(247, 251, 255), Rgb(222, 235, 247), Rgb(198, 219, 239), Rgb(158, 202, 225), Rgb(107, 174, 214),
            Rgb(66, 146, 198), Rgb(33, 113, 181), Rgb(8, 81, 156), Rgb(8, 48, 107),
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

/// Line colours for plots with several series, in order: distinct at a glance on white, and none
/// pale (no yellow), after Tableau's palette with its olive replaced by darker tones.
#[rustfmt::skip]
pub const SERIES_COLOURS: [Rgb; 12] = [
    Rgb(31, 119, 180), Rgb(255, 127, 14), Rgb(44, 160, 44), Rgb(214, 39, 40),
    Rgb(148, 103, 189), Rgb(140, 86, 75), Rgb(227, 119, 194), Rgb(102, 102, 102),
    Rgb(23, 190, 207), Rgb(0, 0, 128), Rgb(128, 128, 0), Rgb(0, 100, 0),
];

/// The colour of series `i` (0-based) from [`SERIES_COLOURS`], repeating after 12.
pub fn series_colour(i: usize) -> plotters::style::RGBColor {
    let Rgb(r, g, b) = SERIES_COLOURS[i % SERIES_COLOURS.len()];
    plotters::style::RGBColor(r, g, b)
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
}
