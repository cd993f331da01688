//! Synthetic classification data for tests and benches: one random centre per class in the
//! unit cube, rows scattered around it. `spread` controls overlap (small = separable).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub struct Blobs {
    pub x: Vec<f32>,
    pub y: Vec<u32>,
}

pub fn blobs(n_rows: usize, n_features: usize, n_classes: usize, spread: f32, seed: u64) -> Blobs {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres: Vec<f32> = (0..n_classes * n_features).map(|_| rng.random_range(0.0..1.0)).collect();
    let mut x = Vec::with_capacity(n_rows * n_features);
    let mut y = Vec::with_capacity(n_rows);
    for row in 0..n_rows {
        let class = row % n_classes;
        for f in 0..n_features {
            // Sum of two uniforms: a cheap bell-shaped offset in [-spread, spread].
            let offset = (rng.random_range(-0.5f32..0.5) + rng.random_range(-0.5f32..0.5)) * spread;
            x.push(centres[class * n_features + f] + offset);
        }
        y.push(class as u32);
    }
    Blobs { x, y }
}
