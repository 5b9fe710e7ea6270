#!/usr/bin/env bash
# Copyright (c) diffmtl contributors. All rights reserved.
# Fill a folder with the wheels that diffmtl's default (OneDL) stack needs
# on a CUDA machine whose Python 3.12 image already has torch, numpy,
# Pillow, opencv, scipy, scikit-image, matplotlib, rich, pyyaml, regex,
# networkx and pytest (see docs/en/gpu.md). Run it where pip reaches the
# package index; every wheel is pure Python (or abi3), ~5 MB in all.
#   bash tools/misc/gpu_wheels.sh [DIR]        (default: .whl)
set -euo pipefail
DIR=${1:-.whl}
PYTHON=${PYTHON:-python3}
mkdir -p "$DIR"
# published as source distributions: build their pure-Python wheels (in
# pip's isolated build environment, where onedl-mmcv finds no torch and
# so compiles no op)
"$PYTHON" -m pip wheel -q --no-deps -w "$DIR" \
    'onedl-mmcv>=2.3.6,<2.4' 'onedl-mmsegmentation>=1.4.2,<1.5'
# the rest, as wheels for CPython 3.12 on x86-64 Linux
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp --abi cp312 \
    --platform manylinux2014_x86_64 --platform any -d "$DIR" \
    'onedl-mmengine>=0.10.12,<0.11' addict yapf platformdirs termcolor \
    prettytable ftfy wcwidth
ls "$DIR"
