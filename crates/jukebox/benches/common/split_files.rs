//! A prepared split written for a Python peer: raw little-endian arrays (`x_*.f32`, row-major
//! `rows x n_features`; `y_*.u32`, class indices) and `meta.json` with the sizes plus whatever the
//! bench adds. Peers read them with `numpy.fromfile` (see `read_split` in the peer scripts), so
//! both sides fit and score exactly the same rows.

use std::path::Path;

use jukebox::prepare::PreparedData;

/// Writes the training, validation and test rows of `data` to `dir`, and `meta.json` with their
/// sizes merged with `extra` (a JSON object).
pub fn write_split(dir: &Path, data: &PreparedData, extra: serde_json::Value) {
    let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let u32s = |v: &[u32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    for (name, x, y) in [
        ("train", &data.x_train, &data.y_train),
        ("val", &data.x_val, &data.y_val),
        ("test", &data.x_test, &data.y_test),
    ] {
        std::fs::write(dir.join(format!("x_{name}.f32")), f32s(x)).expect("writing the split");
        std::fs::write(dir.join(format!("y_{name}.u32")), u32s(y)).expect("writing the split");
    }
    let mut meta = serde_json::json!({
        "n_train": data.n_train(),
        "n_val": data.n_val(),
        "n_test": data.n_test(),
        "n_features": data.n_features(),
        "n_classes": data.n_classes(),
    });
    if let (Some(meta), serde_json::Value::Object(extra)) = (meta.as_object_mut(), extra) {
        meta.extend(extra);
    }
    std::fs::write(dir.join("meta.json"), meta.to_string()).expect("writing the split");
}
