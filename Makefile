# How to build, check, test and ship llenergymeasure. CI (.ci/run, .github/)
# and the README call these targets; nothing else knows the commands.
#
#   make install      dev venv (.venv) with the dev + pytorch extras, CPU torch
#   make test         THE test command: Docker engine + CPU image + unit and
#                     integration tests, in one pytest run
#   make ci           install lint typecheck schema-check test
#   make help         every target
#
# Runs on a machine with no GPU and no container registry: the CPU image is
# built FROM a base made locally with debootstrap, from a wheelhouse made on
# the host (see scripts/ and src/llenergymeasure/images/pytorch/Dockerfile).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Touched after a successful install; reinstalls when pyproject.toml changes.
INSTALLED := $(VENV)/.installed

# The CPU build of torch (a local wheel on the CI machines). Without this pin
# pip fetches a CUDA build of several GB.
TORCH_CPU ?= torch==2.13.0

# Read from the sources, never written twice.
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' src/llenergymeasure/_version.py)
PROTOCOL := $(shell sed -n 's/^PROTOCOL_VERSION = \([0-9][0-9]*\).*/\1/p' src/llenergymeasure/schemas/job.py)

# Image references, bases, extras and capabilities come from the image catalog
# (src/llenergymeasure/images/__init__.py), never written here a second time.
IMAGES_PY := $(BIN)/python -m llenergymeasure.images
image_fact = $(shell test -x $(BIN)/python && $(IMAGES_PY) $(1) $(2) $(3))

# The CPU image's base: made here with debootstrap (no registry), or any
# Debian 12 image with python3 + venv that can be pulled, e.g. on GitHub:
# BASE_IMAGE_CPU=python:3.11-slim-bookworm.
LOCAL_BASE := llenergymeasure/base:bookworm
BASE_IMAGE_CPU ?= $(LOCAL_BASE)
IMAGE_CPU ?= $(call image_fact,ref,pytorch,cpu)
WHEELHOUSE ?= build/wheelhouse
GPU_BACKENDS := pytorch vllm tensorrt
# Registry (host[:port][/path]) the images are pushed to / pulled from; empty =
# the Docker engine's default registry. The same setting as LLEM_REGISTRY.
REGISTRY ?=
# Extra `llem image build` options for the GPU images, e.g. `--base IMAGE`, or
# for an air-gapped build `--wheelhouse DIR --offline` with a wheelhouse filled by
# PY_VERSION=3.12 scripts/make_wheelhouse.sh DIR --extra zeus --extra codecarbon.
GPU_BUILD_ARGS ?=

PYTEST_ARGS ?=
LINT_PATHS := $(wildcard src tests benchmarks)

.PHONY: help install lint typecheck schema-check docs test test-unit test-integration \
        test-gpu gpu-check browser docker-engine base-image wheelhouse image-cpu images image-ref \
        $(GPU_BACKENDS:%=image-%) $(GPU_BACKENDS:%=push-image-%) version tiny-model demo bench mutation ci clean distclean

help: ## list the targets
	@grep -E '^[a-zA-Z_%-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 20

# ---------------------------------------------------------------- development

install: $(INSTALLED) ## create $(VENV) and install the project editable with dev + pytorch + ray extras

# A torch that is already there (a CUDA build on a GPU host) is kept; only a
# venv without one gets the CPU pin. hatchling lets make_wheelhouse.sh build
# the project wheel without a throw-away isolated build environment.
$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	if $(BIN)/python -c 'import torch' 2>/dev/null; then torch=; else torch='$(TORCH_CPU)'; fi; \
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --progress-bar off \
	    -e '.[dev,pytorch,ray]' hatchling $$torch
	touch $@

lint: $(INSTALLED) ## ruff check + ruff format --check + import contracts + zizmor on the workflows
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/lint-imports
	$(BIN)/zizmor --offline --quiet .github/workflows

typecheck: $(INSTALLED) ## mypy (strict, config in pyproject.toml)
	$(BIN)/mypy src

schema-check: $(INSTALLED) ## fail when the committed reference pages or JSON Schemas drift from the models
	$(BIN)/python -m llenergymeasure.orchestrator.docgen --check

docs: $(INSTALLED) ## regenerate the config/result reference pages and the JSON Schemas from the models
	$(BIN)/python -m llenergymeasure.orchestrator.docgen

# ---------------------------------------------------------------------- tests

# pytest with exit code 5 ("no tests collected") reported as what it is: a
# failure. The status is passed through, never swallowed.
define pytest
	rc=0; $(BIN)/python -m pytest $(1) $(PYTEST_ARGS) || rc=$$?; \
	if [ "$$rc" -eq 5 ]; then echo "error: pytest collected no tests from: $(1)" >&2; fi; \
	exit "$$rc"
endef

test: $(INSTALLED) docker-engine image-cpu browser ## THE test command: unit + integration tests (real Docker, CPU image)
	$(call pytest,tests/unit tests/integration)

test-unit: $(INSTALLED) ## unit tests only (no Docker, no GPU)
	$(call pytest,tests/unit)

test-integration: $(INSTALLED) docker-engine image-cpu browser ## integration tests (real Docker, CPU image)
	$(call pytest,tests/integration)

# Without a GPU visible to NVML both GPU targets stop at once with one line and
# a non-zero exit; under LLEM_REQUIRE_GPU=1 a skipped GPU test fails (tests/conftest.py).
REQUIRE_GPU := $(BIN)/python -m llenergymeasure.orchestrator.selftest require-gpu

test-gpu: $(INSTALLED) ## tests that need an NVIDIA GPU (fails on a host without one)
	@$(REQUIRE_GPU)
	$(call pytest,-m gpu tests/gpu)

GPU_CHECK_DIR ?= gpu-check

gpu-check: $(INSTALLED) ## validate a GPU host: images, GPU tests, counter phase test, model runs → gpu-check/report.json
	@$(REQUIRE_GPU)
	mkdir -p $(GPU_CHECK_DIR)
	rc=0; LLEM_REQUIRE_GPU=1 $(BIN)/python -m pytest -m gpu tests/gpu --junitxml=$(GPU_CHECK_DIR)/gpu-tests.xml $(PYTEST_ARGS) || rc=$$?; \
	$(BIN)/llem self-test --gpu --output $(GPU_CHECK_DIR) --tests-junit $(GPU_CHECK_DIR)/gpu-tests.xml --project-wheel || rc=$$?; \
	exit "$$rc"

# The report's browser test drives Debian's chromium with the playwright package (browser builds
# fetched by playwright's own installer are not available on the CI machines).
browser: ## install Debian's chromium for the report's browser test (only if missing)
	command -v chromium >/dev/null || { \
	    [ "$$(id -u)" -eq 0 ] || { echo "error: chromium is missing; install it: apt-get install -y chromium" >&2; exit 1; }; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
	chromium --version

# --------------------------------------------------------------------- images

docker-engine: ## install and start a Docker engine when none answers
	scripts/install_docker_engine.sh

base-image: docker-engine ## the CPU image's base: debootstrap llenergymeasure/base:bookworm (only if missing)
ifeq ($(BASE_IMAGE_CPU),$(LOCAL_BASE))
	BASE_IMAGE_TAG='$(LOCAL_BASE)' scripts/bootstrap_base_image.sh
else
	docker image inspect '$(BASE_IMAGE_CPU)' >/dev/null 2>&1 || docker pull '$(BASE_IMAGE_CPU)'
endif

wheelhouse: $(INSTALLED) ## project wheel + every CPU-image dependency wheel in build/wheelhouse
	extras='$(call image_fact,extras,pytorch,cpu)'; \
	PYTHON='$(BIN)/python' scripts/make_wheelhouse.sh $(WHEELHOUSE) \
	    $$(printf -- '--extra %s ' $${extras//,/ }) '$(TORCH_CPU)' tokenizers

image-cpu: base-image wheelhouse ## the CPU image the integration tests run (air-gapped build)
	@test -n '$(PROTOCOL)' || { echo "error: PROTOCOL_VERSION not found in src/llenergymeasure/schemas/job.py" >&2; exit 1; }
	scripts/build_image.sh '$(IMAGE_CPU)' src/llenergymeasure/images/pytorch/Dockerfile $(WHEELHOUSE) \
	    --build-arg BASE_IMAGE='$(BASE_IMAGE_CPU)' --build-arg PIP_INDEX_ARGS=--no-index \
	    --build-arg VERSION='$(VERSION)' --build-arg PROTOCOL='$(PROTOCOL)' \
	    --build-arg EXTRAS='$(call image_fact,extras,pytorch,cpu)' \
	    --build-arg CAPABILITIES='$(call image_fact,capabilities,pytorch,cpu)'

images: $(GPU_BACKENDS:%=image-%) ## the three GPU images (needs a registry to pull the bases)

# `llem image build` is the one build path, for a clone and for a pip-installed
# host alike: here it gets the project wheel of this checkout.
$(GPU_BACKENDS:%=image-%): image-%: $(INSTALLED) docker-engine
	$(BIN)/llem image build $* --registry '$(REGISTRY)' --project-wheel $(GPU_BUILD_ARGS)

image-ref: ## print the reference of one image: make image-ref BACKEND=vllm [VARIANT=cpu] [REGISTRY=...]
	@test -n '$(BACKEND)' || { echo "error: set BACKEND=pytorch|vllm|tensorrt" >&2; exit 2; }
	@test -x $(BIN)/python || { echo "error: no $(VENV); run make install" >&2; exit 2; }
	@$(IMAGES_PY) ref '$(BACKEND)' '$(VARIANT)' '$(REGISTRY)'

# Push one GPU image under the reference the default config pulls: with
# REGISTRY set, the image is built under the prefixed name already.
$(GPU_BACKENDS:%=push-image-%): push-image-%: image-%
	docker push "$$($(IMAGES_PY) ref '$*' '' '$(REGISTRY)')"

# ------------------------------------------------------------------ the rest

version: ## print the project version (from src/llenergymeasure/_version.py)
	@echo '$(VERSION)'

TINY_MODEL := build/tiny-llama

tiny-model: $(TINY_MODEL)/config.json ## a tiny random-weight Llama + tokenizer in build/tiny-llama (no model hub)

$(TINY_MODEL)/config.json: | $(INSTALLED)
	$(BIN)/python scripts/make_tiny_model.py $(TINY_MODEL)

demo: $(INSTALLED) docker-engine image-cpu tiny-model ## llem run examples/demo.yaml --report: the tiny model on the CPU image
	$(BIN)/llem run examples/demo.yaml --report

bench: $(INSTALLED) ## the benchmarks (ratios measured side by side)
	$(BIN)/python benchmarks/run_all.py

# Mutation testing of the measurement core (the modules listed under
# [tool.mutmut] in pyproject.toml): mutmut changes the code one small edit at a
# time and runs the unit tests against each mutant; a mutant no test notices is
# a formula nothing pins. Slow (tens of minutes), hence not part of `ci`;
# mutmut keeps its results in mutants/ and re-tests only what changed.
# Fails below MUTATION_MIN_SCORE percent, equivalent mutants
# (tests/mutation_equivalent.txt) left out.
MUTATION_CHILDREN ?= 2
MUTATION_MIN_SCORE ?= 90
mutation: $(INSTALLED) ## mutation testing of the measurement core (slow, not in ci): fails below 90 % killed
	$(BIN)/mutmut run --max-children $(MUTATION_CHILDREN)
	$(BIN)/python scripts/mutation_score.py --min-score $(MUTATION_MIN_SCORE) --show-survivors

ci: install lint typecheck schema-check test ## what .ci/run runs after setting up the machine

clean: ## build outputs and caches (keeps $(VENV) and the images)
	rm -rf build dist .mypy_cache .ruff_cache .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean ## also the venv
	rm -rf $(VENV)
