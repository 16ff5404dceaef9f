#!/usr/bin/env bash
# Set up everything on a fresh machine and run the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DEEPCREAM_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e '.[test]'
# An editable install leaves deepcream's modules uncompiled and, where PYTHONDONTWRITEBYTECODE
# is set (as on these machines), every run compiles them again (~50 ms per start): compile
# them once, as a wheel install does.
"$VENV/bin/python" -m compileall -q deepcream
# The web-page test drives Debian's chromium (browser builds cannot be downloaded here).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
"$VENV/bin/ruff" check .
set +e
"$VENV/bin/python" -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests"
  rc=0
fi
exit "$rc"
