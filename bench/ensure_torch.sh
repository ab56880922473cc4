#!/bin/sh
# Makes sure Debian's PyTorch and OpenBLAS are installed for bench/torch_ref.py.
# Without libopenblas0-pthread, torch falls back to the reference BLAS (about 40x slower) and the
# yardstick would flatter the lab. Installs with apt-get when missing (root or sudo needed).
set -e
PY=/usr/bin/python3
if [ -x "$PY" ] && "$PY" -c 'import torch, numpy' 2>/dev/null && dpkg -s libopenblas0-pthread >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
  echo "ensure_torch: python3-torch or libopenblas0-pthread is missing and this user cannot install packages; run: apt-get install -y python3-torch libopenblas0-pthread" >&2
  exit 1
fi
echo "ensure_torch: installing python3-torch and libopenblas0-pthread" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends python3-torch libopenblas0-pthread >&2 || {
  $SUDO apt-get update >&2
  $SUDO apt-get install -y --no-install-recommends python3-torch libopenblas0-pthread >&2
}
"$PY" -c 'import torch, numpy' >&2
