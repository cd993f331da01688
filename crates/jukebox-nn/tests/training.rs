//! Training behaviour through the public API: determinism, learning, validation and progress.

mod common;

use jukebox_nn::onnx::{to_onnx_bytes, OnnxSpec};
use jukebox_nn::{EpochProgress, FitOptions, Network, Samples};

fn spec(n: usize) -> OnnxSpec {
    OnnxSpec::new("determinism", (0..n).map(|i| format!("feature_{i}")))
}

fn train(network_seed: u64, shuffle_seed: u64) -> Network {
    let data = common::blobs(600, 13, 6, 0.3, 99);
    let mut network = Network::workshop(13, 6, network_seed);
    let options = FitOptions { epochs: 3, seed: shuffle_seed, ..FitOptions::default() };
    network.fit(Samples::new(&data.x, &data.y), &options, &mut |_| {}).unwrap();
    network
}

fn all_weights(network: &Network) -> Vec<u32> {
    network.layers().iter().flat_map(|l| l.weights().iter().chain(l.bias())).map(|v| v.to_bits()).collect()
}

#[test]
fn same_seeds_give_bit_identical_weights_and_onnx_bytes() {
    assert_eq!(all_weights(&Network::workshop(13, 6, 5)), all_weights(&Network::workshop(13, 6, 5)));
    let (a, b) = (train(1, 2), train(1, 2));
    assert_eq!(all_weights(&a), all_weights(&b));
    assert_eq!(to_onnx_bytes(&a, &spec(13)).unwrap(), to_onnx_bytes(&b, &spec(13)).unwrap());
}

#[test]
fn different_seeds_give_different_weights_and_bytes() {
    assert_ne!(all_weights(&Network::workshop(13, 6, 5)), all_weights(&Network::workshop(13, 6, 6)));
    let base = train(1, 2);
    let other_init = train(3, 2);
    let other_shuffle = train(1, 4);
    assert_ne!(all_weights(&base), all_weights(&other_init));
    assert_ne!(all_weights(&base), all_weights(&other_shuffle));
    assert_ne!(to_onnx_bytes(&base, &spec(13)).unwrap(), to_onnx_bytes(&other_shuffle, &spec(13)).unwrap());
}

#[test]
fn it_learns_a_separable_multi_class_problem() {
    let train_data = common::blobs(2000, 13, 8, 0.15, 7);
    // Same centres (same seed stream prefix), fresh rows: a held-out set.
    let all = common::blobs(2500, 13, 8, 0.15, 7);
    let (test_x, test_y) = (&all.x[2000 * 13..], &all.y[2000..]);

    let mut network = Network::workshop(13, 8, 42);
    let (before_loss, before_accuracy) = network.evaluate(test_x, test_y).unwrap();
    let options =
        FitOptions { epochs: 15, seed: 1, validation: Some(Samples::new(test_x, test_y)), ..FitOptions::default() };
    let history = network.fit(Samples::new(&train_data.x, &train_data.y), &options, &mut |_| {}).unwrap();
    let (after_loss, after_accuracy) = network.evaluate(test_x, test_y).unwrap();
    println!("held-out loss {before_loss:.3} -> {after_loss:.3}, accuracy {before_accuracy:.3} -> {after_accuracy:.3}");
    println!("history loss {:?}", history.loss);

    assert!(after_accuracy > 0.97, "held-out accuracy {after_accuracy}");
    assert!(after_loss < before_loss / 5.0, "loss {before_loss} -> {after_loss}");
    assert!(history.loss.first() > history.loss.last(), "training loss should fall: {:?}", history.loss);
    assert_eq!(history.val_accuracy.len(), 15);
    assert_eq!(*history.val_accuracy.last().unwrap(), after_accuracy);
    assert_eq!(
        network.predict(test_x, test_y.len()).iter().zip(test_y).filter(|(p, y)| p == y).count() as f32
            / test_y.len() as f32,
        after_accuracy
    );
    assert!(history.samples_per_second > 0.0 && history.epoch_seconds.len() == 15);
}

#[test]
fn progress_is_reported_every_n_batches_and_at_each_epoch_end() {
    let data = common::blobs(330, 4, 3, 0.3, 1); // 330 rows / 32 = 11 batches (last has 10 rows)
    let mut network = Network::workshop(4, 3, 0);
    let options = FitOptions {
        epochs: 2,
        progress_every: 4,
        validation: Some(Samples::new(&data.x[..40], &data.y[..10])),
        ..FitOptions::default()
    };
    let mut calls: Vec<EpochProgress> = Vec::new();
    let history = network.fit(Samples::new(&data.x, &data.y), &options, &mut |p| calls.push(p.clone())).unwrap();
    let seen: Vec<(usize, usize, bool)> = calls.iter().map(|p| (p.epoch, p.batch, p.epoch_done)).collect();
    assert_eq!(seen, [(1, 4, false), (1, 8, false), (1, 11, true), (2, 4, false), (2, 8, false), (2, 11, true)]);
    assert!(calls
        .iter()
        .all(|p| p.batches == 11 && p.epochs == 2 && p.loss.is_finite() && (0.0..=1.0).contains(&p.accuracy)));
    let end = &calls[2];
    assert_eq!((end.loss, end.accuracy), (history.loss[0], history.accuracy[0]));
    assert_eq!(end.val_loss, Some(history.val_loss[0]));
    assert!(calls[0].val_loss.is_none());
}
