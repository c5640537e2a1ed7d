"""A cloudmesh-cc style Python job: progress lines in cloudmesh's own format."""

import os
import time

pid = os.getpid()
print(f"# cloudmesh status=running progress=1 pid={pid}")
for p in (20, 40, 60, 80):
    time.sleep(0.2)
    print(f"# cloudmesh status=running progress={p} pid={pid}")
print(f"# cloudmesh status=done progress=100 pid={pid}")
