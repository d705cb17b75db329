#!/usr/bin/env bash
# Rewrites Tests/Fixtures/Equalize with OpenCV's equalizeHist (see fixture.py), in a venv of its own
# holding the pinned opencv-python-headless and NumPy. Usage: bash Tools/equalize/fixture.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x "$here/.venv/bin/python" ]; then
  python3 -m venv "$here/.venv"
  "$here/.venv/bin/pip" install -q opencv-python-headless==4.12.0.88 numpy==2.2.6
fi
exec "$here/.venv/bin/python" "$here/fixture.py"
