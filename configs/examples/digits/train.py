"""Train one element of the sweep: an SVM with the hyper-parameters in $CCD_ITEM,
cross-validated fold by fold (each fold is a progress step), then tested."""

import argparse
import json
import os

import numpy as np
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True, help="the .npz the prepare job wrote")
parser.add_argument("--folds", type=int, default=5)
args = parser.parse_args()

params = json.loads(os.environ["CCD_ITEM"])  # this element's item of the grid
data = np.load(args.data)
x, y = data["x_train"], data["y_train"]
scores = []
folds = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=0)
for fold, (fit, check) in enumerate(folds.split(x, y), start=1):
    model = SVC(**params).fit(x[fit], y[fit])
    scores.append(model.score(x[check], y[check]))
    print(f'::ccd progress={100 * fold // (args.folds + 1)} msg="fold {fold}/{args.folds}"')
model = SVC(**params).fit(x, y)
accuracy = model.score(data["x_test"], data["y_test"])
print(f"C={params['C']} gamma={params['gamma']}: cv {np.mean(scores):.4f}, test {accuracy:.4f}")
print(f"::ccd output acc={accuracy:.4f}")
print(f"::ccd output params={json.dumps(params)}")
