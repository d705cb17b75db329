#!/usr/bin/env bash
# Creates (once) and prints the path of Tools/bench/.venv, the photo benchmark's peers: the `fer`
# package (TensorFlow, OpenCV) and facenet-pytorch (PyTorch), plus scikit-image's pictures for
# compose_photos.py. Versions are pinned in peers-requirements.txt (a `pip freeze` of a working
# install); fer, facenet-pytorch and scikit-image go in without their dependencies, whose pins are
# years old (facenet-pytorch wants torch < 2.3) or not needed (scikit-image is only read for its
# pictures). About 7 GB on disk (PyPI's torch brings its CUDA libraries; nothing here uses them);
# the first install took 12 minutes on the project's loaded 2-core machine.
# Usage: PY=$(bash Tools/bench/peers_venv.sh)/bin/python
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="$here/.venv"
# facenet_pytorch first: its torchvision loaded after TensorFlow aborts (see photo_peers.py)
check='import facenet_pytorch, fer.fer, tensorflow, cv2, importlib.util; assert importlib.util.find_spec("skimage")'
if [ ! -x "$dir/bin/python" ] || ! TF_CPP_MIN_LOG_LEVEL=3 "$dir/bin/python" -c "$check" 2>/dev/null; then
  start=$(date +%s)
  python3 -m venv "$dir" >&2
  "$dir/bin/pip" install -q -r "$here/peers-requirements.txt" >&2
  "$dir/bin/pip" install -q --no-deps fer==25.10.3 facenet-pytorch==2.6.0 scikit-image==0.26.0 >&2
  echo "peers_venv.sh: $dir installed in $(( $(date +%s) - start )) s, $(du -sh "$dir" | cut -f1)" >&2
fi
echo "$dir"
