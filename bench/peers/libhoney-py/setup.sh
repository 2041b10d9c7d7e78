#!/usr/bin/env bash
# Creates bench/peers/libhoney-py/.venv and installs exactly libhoney==2.4.0
# (plus its dependencies: requests, statsd, urllib3) from PyPI.
# Idempotent: does nothing if the venv already has libhoney 2.4.0.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
py="${PYTHON:-python3}"

if [ -x "$venv/bin/python" ] && \
   [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("libhoney"))' 2>/dev/null)" = "2.4.0" ]; then
    echo "libhoney 2.4.0 already installed in $venv" >&2
    exit 0
fi

"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -c "$here/constraints.txt" 'libhoney==2.4.0'
"$venv/bin/python" -c 'import libhoney.version as v; assert v.VERSION == "2.4.0", v.VERSION' 
echo "installed libhoney 2.4.0 into $venv" >&2
