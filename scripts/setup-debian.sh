#!/usr/bin/env bash
# Installs what rram-edge needs on a Debian machine that already has the Swift 6 toolchain:
# zlib headers (gzip'd IDX data sets), the Fashion-MNIST data set (Debian's
# dataset-fashion-mnist), iverilog (optional: the $readmemh image test skips without it) and
# python3-opencv (optional: the CLAHE and preprocessing tests compare with OpenCV and numpy
# through scripts/opencv-clahe.py and skip without it).
# Safe to run again: it installs only what is missing.
set -euo pipefail
need=()
dpkg -s zlib1g-dev >/dev/null 2>&1 || need+=(zlib1g-dev)
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
command -v iverilog >/dev/null 2>&1 || need+=(iverilog)
# Debian's module lands in /usr/bin/python3's path; a python3 earlier on PATH (pyenv) may not see it.
python3 -c 'import cv2' >/dev/null 2>&1 || /usr/bin/python3 -c 'import cv2' >/dev/null 2>&1 || need+=(python3-opencv)
if [ ${#need[@]} -eq 0 ]; then
  echo "setup: nothing to install"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "setup: installing ${need[*]}"
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${need[@]}"
