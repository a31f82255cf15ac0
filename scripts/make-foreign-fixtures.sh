#!/usr/bin/env bash
# Remakes the foreign-generator fixtures in runtime/tests/fixtures/foreign/ with the real
# exporters: PyTorch's torch.onnx.export (both exporters) and tf2onnx. The tests only read the
# committed files; run this when an exporter's output form should be re-checked.
#
# Usage: scripts/make-foreign-fixtures.sh [VENV_DIR]
#   VENV_DIR   where the two Python environments go (default: /tmp/gantry-fixture-venvs).
# Needs python3 with venv and network access to PyPI (and download.pytorch.org for the CPU
# build of torch, a 200 MB download instead of 900 MB).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venvs="${1:-/tmp/gantry-fixture-venvs}"
out="$root/runtime/tests/fixtures/foreign"
mkdir -p "$venvs" "$out"

if [[ ! -x "$venvs/torch/bin/python" ]]; then
  python3 -m venv "$venvs/torch"
  "$venvs/torch/bin/pip" install --quiet --index-url https://download.pytorch.org/whl/cpu torch==2.15.0 ||
    "$venvs/torch/bin/pip" install --quiet torch==2.15.0
  "$venvs/torch/bin/pip" install --quiet onnx==1.23.2 onnxscript==0.7.2 numpy==2.4.6
fi
if [[ ! -x "$venvs/tf/bin/python" ]]; then
  python3 -m venv "$venvs/tf"
  "$venvs/tf/bin/pip" install --quiet tensorflow-cpu==2.21.0 numpy==2.4.6
  # tf2onnx 1.16.1 declares protobuf~=3.20, which TensorFlow 2.21 cannot import; it runs with
  # TensorFlow's protobuf, so it is installed without its declared dependencies.
  "$venvs/tf/bin/pip" install --quiet --no-deps tf2onnx==1.16.1
  "$venvs/tf/bin/pip" install --quiet onnx==1.19.1 flatbuffers requests
fi
# tf2onnx 1.16's optional constant-folding rewriter calls np.cast, gone in NumPy 2: it prints
# "rewriter ... exception" and skips that rewrite. The graph is still converted exactly; the
# folding it would have done is left to tract (and the adopted graph is checked against
# TensorFlow's outputs by the tests).

"$venvs/torch/bin/python" "$root/scripts/foreign_fixtures.py" torch "$out"
TF_CPP_MIN_LOG_LEVEL=2 "$venvs/tf/bin/python" "$root/scripts/foreign_fixtures.py" tf "$out"
ls -l "$out"
