#!/usr/bin/env bash
# Set up everything on a fresh machine and decensor the bundled example image into out/.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DEEPCREAM_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e .
mkdir -p out
"$VENV/bin/deepcream" decensor deepcream/examples/example-bar.png -o out/ "$@"
