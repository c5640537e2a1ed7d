#!/bin/sh
echo "# cloudmesh status=running progress=1 pid=$$"
for p in 25 50 75; do
  sleep 0.2
  echo "# cloudmesh status=running progress=$p pid=$$"
done
echo "# cloudmesh status=done progress=100 pid=$$"
