# Copyright (c) diffmtl contributors. All rights reserved.
#
#   make demo   set up .venv (first time only), make the synthetic dataset,
#               train + validate the demo config on it
#   make test   set up .venv (first time only), run the whole test suite
#   make setup  only the set-up
#
# Variables (make VAR=value or environment):
#   PYTHON      interpreter that creates the venv (python3, needs >= 3.8)
#   VENV        virtual environment directory (.venv)
#   TORCH_SPEC  pip arguments that install torch (torch==2.13.0). For CUDA:
#               TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
#               and FORCE_CUDA=1 to build mmcv's CUDA ops (needs nvcc).
#   DEMO_CFG    config trained by `make demo`
#   DEMO_DATA   where `make demo` generates the synthetic scenes
#   DEMO_ARGS   extra tools/train.py arguments for `make demo`
#   PYTEST_ARGS extra pytest arguments for `make test`

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
MMCV_SPEC ?= mmcv==2.1.0
MMCV_MAX_JOBS ?= 2
DEMO_CFG ?= configs/diffmtl/synthetic_one_r18.py
DEMO_DATA ?= data/synthetic_scenes
DEMO_ARGS ?=
PYTEST_ARGS ?=

PY := $(VENV)/bin/python
PIP := $(PY) -m pip
REQ_FILES := setup.py requirements/runtime.txt requirements/tests.txt
# The stamp's name is a hash of the requirement files and TORCH_SPEC: a
# second run with nothing changed skips the whole set-up.
REQ_HASH := $(shell cat $(REQ_FILES) 2>/dev/null | { cat; echo '$(TORCH_SPEC) $(MMCV_SPEC)'; } | cksum | cut -d' ' -f1)
STAMP := $(VENV)/.diffmtl-setup-$(REQ_HASH)

.PHONY: all demo test setup clean-venv

all: test

setup: $(STAMP)

$(STAMP):
	@test -x $(PY) || { echo ">>> creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo ">>> installing torch ($(TORCH_SPEC))"
	$(PIP) install $(TORCH_SPEC)
	$(PIP) install "setuptools<82" wheel ninja psutil
	@if $(PY) -c "import mmcv, mmcv.ops" >/dev/null 2>&1; then \
		echo ">>> mmcv with compiled ops already installed"; \
	else \
		echo ">>> building $(MMCV_SPEC) with its compiled ops from source:" \
		     "the first build takes ~12 min on 2 CPU cores (later venvs reuse pip's wheel cache)"; \
		MMCV_WITH_OPS=1 MAX_JOBS=$(MMCV_MAX_JOBS) $(PIP) install --no-build-isolation \
			"$(MMCV_SPEC)" "mmengine>=0.10.7,<1.0.0" || exit 1; \
		$(PY) -c "import mmcv.ops" || exit 1; \
	fi
	$(PIP) install -r requirements/runtime.txt -r requirements/tests.txt
	$(PIP) install --no-build-isolation --no-deps -e .
	$(PY) -c "import diffmtl, mmcv.ops, mmseg; print('diffmtl', diffmtl.__version__, 'ready')"
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

clean-venv:
	rm -rf $(VENV)
