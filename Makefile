# Copyright (c) diffmtl contributors. All rights reserved.
#
#   make demo       set up the venv (first time only), make the synthetic
#                   dataset, train + validate the demo config on it
#   make test       set up the venv (first time only), run the whole suite
#   make test-fast  the unit tests only (tests marked `slow` deselected)
#   make setup      only the set-up
#
# Variables (make VAR=value or environment):
#   MM_STACK    OpenMMLab packages: onedl (default; the maintained OneDL
#               releases, pure Python, no compiler) or openmmlab (upstream
#               mmcv 2.1.0 built with its compiled ops, mmseg 1.2.2).
#               Switching removes the other stack's packages first.
#   PYTHON      interpreter that creates the venv (python3; >= 3.10 for
#               onedl, >= 3.8 for openmmlab)
#   VENV        virtual environment directory (.venv)
#   TORCH_SPEC  pip arguments that install torch (torch==2.13.0). For CUDA:
#               TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
#               (with MM_STACK=openmmlab, FORCE_CUDA=1 builds mmcv's CUDA ops)
#   WHEELS      a folder of pre-downloaded wheels: install from it only, no
#               index (an offline machine; see docs/en/get_started.md)
#   DEMO_CFG    config trained by `make demo`
#   DEMO_DATA   where `make demo` generates the synthetic scenes
#   DEMO_ARGS   extra tools/train.py arguments for `make demo`
#   PYTEST_ARGS extra pytest arguments for `make test` / `make test-fast`

PYTHON ?= python3
VENV ?= .venv
MM_STACK ?= onedl
TORCH_SPEC ?= torch==2.13.0
MMCV_MAX_JOBS ?= 2
WHEELS ?=
DEMO_CFG ?= configs/diffmtl/synthetic_one_r18.py
DEMO_DATA ?= data/synthetic_scenes
DEMO_ARGS ?=
PYTEST_ARGS ?=

ifeq ($(MM_STACK),onedl)
OTHER_STACK := mmcv mmengine mmsegmentation
# onedl-mmcv compiles its ops whenever its build finds torch: it is built
# in pip's isolated build environment (no torch), as a pure-Python wheel
STACK_ENV :=
STACK_BUILD :=
BUILD_TOOLS := setuptools wheel
else ifeq ($(MM_STACK),openmmlab)
OTHER_STACK := onedl-mmcv onedl-mmengine onedl-mmsegmentation
# mmcv 2.1.0's ops are compiled against the venv's torch
STACK_ENV := MMCV_WITH_OPS=1 MAX_JOBS=$(MMCV_MAX_JOBS)
STACK_BUILD := --no-build-isolation
BUILD_TOOLS := "setuptools<82" wheel ninja psutil
else
$(error MM_STACK must be onedl or openmmlab, got '$(MM_STACK)')
endif

PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PIP_INSTALL := $(PIP) install$(if $(WHEELS), --no-index --find-links $(WHEELS))
REQ_FILES := setup.py requirements/runtime.txt requirements/tests.txt \
	requirements/$(MM_STACK).txt
# The stamp's name is a hash of the requirement files, the stack and
# TORCH_SPEC: a second run with nothing changed skips the whole set-up, and
# switching stacks runs it again.
REQ_HASH := $(shell cat $(REQ_FILES) 2>/dev/null | { cat; echo '$(MM_STACK) $(TORCH_SPEC)'; } | cksum | cut -d' ' -f1)
STAMP := $(VENV)/.diffmtl-setup-$(REQ_HASH)

.PHONY: all demo test test-fast setup clean-venv

all: test

setup: $(STAMP)

# The two stacks install the same import names from different
# distributions and pip would mix their files: the other stack's
# distributions are removed first.
$(STAMP):
	@test -x $(PY) || { echo ">>> creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@if [ "$(MM_STACK)" = onedl ]; then $(PY) -c "import sys; sys.exit(sys.version_info < (3, 10))" || \
		{ echo "MM_STACK=onedl needs Python >= 3.10 ($(PY) is older): use PYTHON=python3.10 (or newer), or MM_STACK=openmmlab"; exit 1; }; fi
	@echo ">>> installing torch ($(TORCH_SPEC)) and the $(MM_STACK) OpenMMLab stack"
	$(PIP_INSTALL) $(TORCH_SPEC)
	$(PIP_INSTALL) $(BUILD_TOOLS)
	$(PIP) uninstall -y $(OTHER_STACK)
	@if [ "$(MM_STACK)" = openmmlab ] && ! $(PY) -c "import mmcv.ops" >/dev/null 2>&1; then \
		echo ">>> building mmcv 2.1.0 with its compiled ops from source: the first" \
		     "build takes ~12 min on 2 CPU cores (later venvs reuse pip's wheel cache)"; fi
	$(STACK_ENV) $(PIP_INSTALL) $(STACK_BUILD) -r requirements/$(MM_STACK).txt
	$(PIP_INSTALL) -r requirements/runtime.txt -r requirements/tests.txt
	$(PIP_INSTALL) --no-build-isolation --no-deps -e .
	$(PY) -c "import diffmtl, mmseg; print('diffmtl', diffmtl.__version__, 'ready on', diffmtl.mm_stack())"
	@rm -f $(VENV)/.diffmtl-setup-*
	@touch $@

demo: $(STAMP)
	@if [ -f $(DEMO_DATA)/meta.json ] && [ -f $(DEMO_DATA)/splits/test.txt ]; then \
		echo ">>> $(DEMO_DATA) exists, not regenerating"; \
	else \
		$(PY) tools/dataset_converters/make_synthetic_scenes.py --out $(DEMO_DATA); \
	fi
	$(PY) tools/train.py $(DEMO_CFG) $(DEMO_ARGS)

test: $(STAMP)
	$(PY) -m pytest tests -q $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest tests -q -m "not slow" $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
