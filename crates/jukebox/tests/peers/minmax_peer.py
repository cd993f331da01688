"""scikit-learn's MinMaxScaler as the judge of our scaling rule.

Reads {"train": [[...], ...], "new": [[...], ...]} on stdin, fits MinMaxScaler on "train" and
prints the scaled "new" rows as JSON.
"""
import json
import sys

from sklearn.preprocessing import MinMaxScaler

rows = json.load(sys.stdin)
scaler = MinMaxScaler().fit(rows["train"])
json.dump(scaler.transform(rows["new"]).tolist(), sys.stdout)
