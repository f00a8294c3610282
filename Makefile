# Tenfold — every target bootstraps itself on a fresh machine that has only Python >= 3.11.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PKG ?=
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export TOKENIZERS_PARALLELISM ?= false
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export PYTHONHASHSEED ?= 0
export MPLBACKEND ?= Agg

export PATH := $(HOME)/.local/bin:$(PATH)
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
PY := .venv/bin/python
MEMBERS := shared $(wildcard packages/*)

# member directory for PKG=x: "core" -> shared, anything else -> packages/x
ifeq ($(PKG),)
  TEST_PATHS := shared/tests $(wildcard packages/*/tests) tests
else ifeq ($(PKG),core)
  TEST_PATHS := shared/tests
else
  TEST_PATHS := packages/$(PKG)/tests
endif

.PHONY: help setup test demo lint format bench build clean

help:
	@echo "make setup             install uv if missing, then sync every workspace member (.venv)"
	@echo "make test [PKG=x]      run every test (core, packages, cross-package) or one member's (PKG=core for the core)"
	@echo "make demo [PKG=x]      run every package's embedded demo (offline, CPU) and print a summary table"
	@echo "make lint              ruff check + ruff format --check"
	@echo "make bench             run the benchmarks in bench/ and packages/*/bench/"
	@echo "make build             build wheels of every member into dist/"

$(UV):
	@command -v uv >/dev/null 2>&1 || python3 -m pip install -q --user uv || python3 -m pip install -q uv

.venv/.synced: $(UV) uv.lock pyproject.toml $(wildcard shared/pyproject.toml packages/*/pyproject.toml)
	@UVBIN=$$(command -v uv || echo $(UV)); $$UVBIN sync --all-packages --frozen
	@touch $@

setup: .venv/.synced

test: setup
	$(PY) -m pytest $(TEST_PATHS)

demo: setup
	$(PY) -m tenfold_core.demo_all $(if $(PKG),--only $(PKG),) --out runs/demo

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: setup
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

bench: setup
	@set -e; for f in bench/*.py packages/*/bench/*.py; do [ -f "$$f" ] || continue; echo "== $$f"; $(PY) $$f; done

build: setup
	@UVBIN=$$(command -v uv || echo $(UV)); rm -rf dist; for m in $(MEMBERS); do $$UVBIN build --quiet --wheel --out-dir dist $$m || exit 1; done; ls dist

clean:
	rm -rf dist runs .pytest_cache .ruff_cache
