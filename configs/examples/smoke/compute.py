"""Step 2 of the smoke test: a Python script that computes a value for the notebook."""

import os

total = sum(i * i for i in range(1_000))
print(f"::ccd progress=100 msg=\"sum of squares {total}\"")
print(f"running as job {os.environ['CCD_JOB']} of {os.environ['CCD_WORKFLOW']}")
print(f"::ccd output total={total}")
