"""Prepare the sweep: split scikit-learn's bundled digits (no download) and choose
the hyper-parameter grid the train job fans out over."""

import json
import os

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

digits = load_digits()
x_train, x_test, y_train, y_test = train_test_split(
    digits.data / 16.0, digits.target, test_size=0.25, random_state=0, stratify=digits.target
)
# the run directory is this attempt's own: the arrays stay with the run that made them
data = os.path.join(os.environ["CCD_RUN_DIR"], "digits.npz")
np.savez(data, x_train=x_train, x_test=x_test, y_train=y_train, y_test=y_test)
print(f"{len(x_train)} training and {len(x_test)} test images in {data}")

grid = [{"C": c, "gamma": gamma} for c in (1.0, 10.0) for gamma in (0.01, 0.05, 0.2)]
print(f"::ccd output data={data}")
print(f"::ccd output grid={json.dumps(grid)}")
