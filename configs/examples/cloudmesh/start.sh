#!/bin/sh
echo "# cloudmesh status=running progress=1 pid=$$"
echo "starting the experiment"
echo "# cloudmesh status=done progress=100 pid=$$"
