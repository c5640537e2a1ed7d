"""A stand-in for a training script: prints epochs that ccd turns into progress."""

import argparse
import time

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=5)
args = parser.parse_args()

accuracy = 0.5
for epoch in range(1, args.epochs + 1):
    time.sleep(0.3)
    accuracy += (1 - accuracy) / 3
    # 'epoch N/5' lines are mapped to a percentage by the job's progress_regex
    print(f"epoch {epoch}/{args.epochs} accuracy={accuracy:.3f}")
print(f"::ccd output accuracy={accuracy:.3f}")
