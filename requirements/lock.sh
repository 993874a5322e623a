#!/usr/bin/env bash
# Regenerates the lock files from pyproject.toml (run it as `make lock` after changing a dependency, and commit
# pyproject.toml and requirements/*.txt together). Tool: pip-tools' pip-compile --generate-hashes, run with the
# project's Python (CPython 3.11 on Linux x86_64: the locks hold the wheels' hashes for that platform).
#
#   requirements/test.txt  core + local + dev + camera + cdc + malls extras, torch pins, YOLO weights   make test
#   requirements/demo.txt  core + local                                                          make demo
#   requirements/core.txt  core only                             store-side collector, Docker images
#
# test.txt is resolved first; demo.txt and core.txt are resolved under its versions as constraints, so the three
# never disagree on a version (tests/tillflow/test_lock.py checks that, and that they match pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
compile="${PIP_COMPILE_BIN:-.venv/bin/pip-compile}"  # not PIP_COMPILE: pip reads PIP_* as its options
opts=(--quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links --newline=lf)
"$compile" "${opts[@]}" ${UPGRADE:+--upgrade} --extra local --extra dev --extra camera --extra cdc --extra malls \
  -o requirements/test.txt pyproject.toml requirements/build.in requirements/test.in
pins=$(mktemp)
trap 'rm -f "$pins"' EXIT
# The same versions, without the hashes, as constraints (pip takes no hashes in a constraints file).
sed -n 's/^\([A-Za-z0-9._-]*==[^ ]*\).*/\1/p' requirements/test.txt > "$pins"
"$compile" "${opts[@]}" --upgrade -c "$pins" --extra local -o requirements/demo.txt pyproject.toml requirements/build.in
"$compile" "${opts[@]}" --upgrade -c "$pins" -o requirements/core.txt pyproject.toml requirements/build.in
# pip-compile writes the temporary constraints path into the "via" comments: name the file it came from instead.
sed -i "s|$pins|requirements/test.txt|g" requirements/demo.txt requirements/core.txt
