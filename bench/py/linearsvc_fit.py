#!/usr/bin/python3
"""scikit-learn peer of 'graft linear fit': StandardScaler + LinearSVC (liblinear, dual
coordinate descent), both fitted on the training features; the timed part is the whole fit,
scaler included. Reports the fit time and the accuracy on the test features.
usage: linearsvc_fit.py --train F.npy --train-labels L.npy --test F.npy --test-labels L.npy
                        [--C 1.0] [--tol 1e-4] [--loss squared_hinge|hinge]"""
import argparse
import json
import time

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

p = argparse.ArgumentParser()
p.add_argument("--train", required=True)
p.add_argument("--train-labels", required=True)
p.add_argument("--test", required=True)
p.add_argument("--test-labels", required=True)
p.add_argument("--C", type=float, default=1.0)
p.add_argument("--tol", type=float, default=1e-4)
p.add_argument("--loss", choices=("squared_hinge", "hinge"), default="squared_hinge")
a = p.parse_args()

x_tr = np.load(a.train).astype(np.float32, copy=False)
y_tr = np.load(a.train_labels)
x_te = np.load(a.test).astype(np.float32, copy=False)
y_te = np.load(a.test_labels)
if x_tr.ndim != 2 or x_te.ndim != 2 or x_tr.shape[1] != x_te.shape[1]:
    raise SystemExit("linearsvc_fit.py: features must be (N, F) with the same F, got %s and %s"
                     % (x_tr.shape, x_te.shape))
if len(y_tr) != len(x_tr) or len(y_te) != len(x_te):
    raise SystemExit("linearsvc_fit.py: labels and features differ in length")

clf = make_pipeline(StandardScaler(),
                    LinearSVC(C=a.C, loss=a.loss, dual=True, tol=a.tol, max_iter=10000))
t0 = time.perf_counter()
clf.fit(x_tr, y_tr)
fit_s = time.perf_counter() - t0
acc = float(np.mean(clf.predict(x_te) == y_te))
print(json.dumps({"impl": "sklearn", "C": a.C, "loss": a.loss, "tol": a.tol, "fit_seconds": fit_s,
                  "test_accuracy": acc, "train_rows": int(x_tr.shape[0]), "dim": int(x_tr.shape[1])}))
