"""scikit-learn's peer of `cargo bench --workspace --bench baselines`.

Reads the split the bench wrote (raw little-endian arrays plus meta.json) and fits scikit-learn's
logistic regression and decision tree on exactly those rows, with the settings that match ours:

- LogisticRegression(C=1/alpha, solver="lbfgs", max_iter, tol): multinomial softmax with an L2
  penalty on the weights (not the intercept), from zero weights;
- DecisionTreeClassifier(criterion="gini", max_depth=None, random_state=0): grown until leaves
  are pure; random_state only fixes the order features are tried in (ties).

Prints one JSON object per fit: model, seconds (wall time of fit), accuracy on the test rows,
extra_mib (peak resident memory during the fit above what was resident before it), and n_iter.
"""

import json
import sys
import time
import warnings

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from proc_status import status_mib


def reset_peak():
    # Writing 5 to clear_refs resets VmHWM (peak RSS) to the current RSS (Linux >= 4.0).
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def main():
    folder = sys.argv[1]
    meta = json.load(open(f"{folder}/meta.json"))
    d = meta["n_features"]

    def load(name, dtype, rows):
        a = np.fromfile(f"{folder}/{name}", dtype=dtype)
        return a.reshape(rows, d) if dtype == "<f4" else a.astype(np.int64)

    x_train = load("x_train.f32", "<f4", meta["n_train"])
    y_train = load("y_train.u32", "<u4", meta["n_train"])
    x_test = load("x_test.f32", "<f4", meta["n_test"])
    y_test = load("y_test.u32", "<u4", meta["n_test"])

    models = {
        "logistic regression": lambda: LogisticRegression(
            C=1.0 / meta["alpha"], solver="lbfgs", max_iter=meta["max_iterations"], tol=meta["tolerance"]
        ),
        "decision tree": lambda: DecisionTreeClassifier(criterion="gini", max_depth=None, random_state=0),
    }
    for name, make in models.items():
        for _ in range(meta["repeats"]):
            model = make()
            reset_peak()
            before = status_mib("VmRSS")
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(x_train, y_train)
            seconds = time.perf_counter() - started
            extra = status_mib("VmHWM") - before
            accuracy = float((model.predict(x_test) == y_test).mean())
            n_iter = int(np.max(model.n_iter_)) if hasattr(model, "n_iter_") else model.get_depth()
            print(
                json.dumps(
                    {
                        "model": name,
                        "seconds": seconds,
                        "accuracy": accuracy,
                        "extra_mib": extra,
                        "n_iter": n_iter,
                        "version": sklearn.__version__,
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
