"""Keras peer of the training bench: the upstream workshop's recipe on the split the bench wrote.

Dense 32-64-128-256 ReLU, softmax over the classes, Adam (learning rate 0.001), sparse
categorical cross-entropy, batch 32, shuffled, validation on the validation rows after each
epoch; Glorot-uniform initialisation (Keras' default, as ours). Prints one JSON line: seconds spent
training (validation excluded, as our samples/s), whole fit seconds, samples/s, test accuracy.

Usage: train_keras.py FOLDER EPOCHS (FOLDER from benches/common/split_files.rs).
"""
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import keras  # noqa: E402


def read_split(folder):
    meta = json.load(open(os.path.join(folder, "meta.json")))
    split = {}
    for name in ("train", "val", "test"):
        rows = meta[f"n_{name}"]
        x = np.fromfile(os.path.join(folder, f"x_{name}.f32"), dtype="<f4").reshape(rows, meta["n_features"])
        y = np.fromfile(os.path.join(folder, f"y_{name}.u32"), dtype="<u4").astype("int64")
        split[name] = (x, y)
    return meta, split


class TrainingTime(keras.callbacks.Callback):
    """Seconds spent in the training batches, validation excluded."""

    def __init__(self):
        super().__init__()
        self.seconds, self.started = 0.0, None

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_test_begin(self, logs=None):
        if self.started is not None:
            self.seconds += time.perf_counter() - self.started
            self.started = None

    def on_epoch_end(self, epoch, logs=None):
        if self.started is not None:
            self.seconds += time.perf_counter() - self.started
            self.started = None


def main():
    folder, epochs = sys.argv[1], int(sys.argv[2])
    meta, split = read_split(folder)
    keras.utils.set_random_seed(42)
    model = keras.Sequential(
        [keras.Input((meta["n_features"],))]
        + [keras.layers.Dense(units, activation="relu") for units in (32, 64, 128, 256)]
        + [keras.layers.Dense(meta["n_classes"], activation="softmax")]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = TrainingTime()
    started = time.perf_counter()
    model.fit(*split["train"], batch_size=32, epochs=epochs, validation_data=split["val"], shuffle=True, verbose=0, callbacks=[timer])
    fit_seconds = time.perf_counter() - started
    x_test, y_test = split["test"]
    accuracy = float((model.predict(x_test, batch_size=1024, verbose=0).argmax(axis=1) == y_test).mean())
    print(json.dumps({
        "keras": keras.__version__,
        "training_seconds": timer.seconds,
        "fit_seconds": fit_seconds,
        "samples_per_second": meta["n_train"] * epochs / timer.seconds,
        "accuracy": accuracy,
    }))


if __name__ == "__main__":
    main()
