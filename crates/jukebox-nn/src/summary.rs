//! A printable overview of a network, laid out like Keras's `model.summary()`.

use std::fmt;

/// One line of a [`Summary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRow {
    /// Layer name, e.g. `dense_1`.
    pub name: String,
    /// Layer type and activation, e.g. `Dense, relu`.
    pub kind: String,
    /// Output shape with `None` for the batch dimension, e.g. `(None, 32)`.
    pub output_shape: String,
    pub parameters: usize,
}

/// Layers, output shapes and parameter counts of a network; `Display` prints the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub rows: Vec<SummaryRow>,
    pub total_parameters: usize,
}

/// `62408` -> `62,408`, as Keras prints counts (and the workbench's tables and captions): the
/// workbench's one digit grouping, [`jukebox_protocol::text::thousands`], for `usize` counts.
pub fn thousands(n: usize) -> String {
    jukebox_protocol::text::thousands(n as u64)
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let layer_cells: Vec<String> = self.rows.iter().map(|r| format!("{} ({})", r.name, r.kind)).collect();
        let w_layer = layer_cells.iter().map(String::len).chain([13]).max().unwrap_or(0);
        let w_shape = self.rows.iter().map(|r| r.output_shape.len()).chain([12]).max().unwrap_or(0);
        let w_params = self.rows.iter().map(|r| thousands(r.parameters).len()).chain([7]).max().unwrap_or(0);
        let rule = |c: char| c.to_string().repeat(w_layer + w_shape + w_params + 6);
        writeln!(f, "Model: \"sequential\"")?;
        writeln!(f, "{}", rule('━'))?;
        writeln!(f, "{:<w_layer$}   {:<w_shape$}   {:>w_params$}", "Layer (type)", "Output Shape", "Param #")?;
        writeln!(f, "{}", rule('━'))?;
        for (cell, row) in layer_cells.iter().zip(&self.rows) {
            writeln!(
                f,
                "{cell:<w_layer$}   {:<w_shape$}   {:>w_params$}",
                row.output_shape,
                thousands(row.parameters)
            )?;
        }
        writeln!(f, "{}", rule('─'))?;
        writeln!(f, " Total params: {}", thousands(self.total_parameters))?;
        writeln!(f, " Trainable params: {}", thousands(self.total_parameters))?;
        write!(f, " Non-trainable params: 0")
    }
}

#[cfg(test)]
mod tests {
    use crate::Network;

    #[test]
    fn workshop_summary_lists_every_layer_with_keras_counts() {
        let text = Network::workshop(13, 72, 0).summary().to_string();
        for expected in [
            "features (Input)",
            "(None, 13)",
            "dense_1 (Dense, relu)",
            "448",
            "dense_4 (Dense, relu)",
            "33,024",
            "dense_5 (Dense, softmax)",
            "(None, 72)",
            "18,504",
            "Total params: 62,408",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }
}
