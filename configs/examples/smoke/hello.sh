# step 1 of the smoke test: a shell script, reporting progress the cloudmesh way
echo "# cloudmesh status=running progress=10"
echo "hello from $(hostname) as $(whoami)"
echo "# cloudmesh status=done progress=100"
