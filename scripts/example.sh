#!/usr/bin/env bash
# Set up everything on a fresh machine and decensor the bundled example image into out/.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DEEPCREAM_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e .
# An editable install leaves deepcream's modules uncompiled and, where PYTHONDONTWRITEBYTECODE
# is set (as on these machines), every run compiles them again (~50 ms per start): compile
# them once, as a wheel install does.
"$VENV/bin/python" -m compileall -q deepcream
mkdir -p out
"$VENV/bin/deepcream" decensor deepcream/examples/example-bar.png -o out/ "$@"
