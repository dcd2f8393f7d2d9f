# Two commands set everything up on a fresh machine:
#   make curriculum   create .venv, install Ploutos, train the three-stage curriculum
#   make test         create .venv, install Ploutos, run the test suite
# Pass extra arguments with ARGS="...", e.g. make curriculum ARGS="--source synthetic --scale 0.001".

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Installed before the project: an unpinned torch can pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0
ARGS ?=
# Test processes (pytest-xdist): the suite is CPU-bound and the project's machines have 2 cores.
JOBS ?= 2

.PHONY: install curriculum test lint type tox clean

$(BIN)/ploutos: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/ploutos

curriculum: $(BIN)/ploutos
	$(BIN)/ploutos run curriculum $(ARGS)

test: $(BIN)/ploutos
	WANDB_MODE=offline WANDB_SILENT=true MPLBACKEND=Agg $(BIN)/python -m pytest -n $(JOBS) $(ARGS)

lint: $(BIN)/ploutos
	$(BIN)/ruff check ploutos_core plugins tests bench examples

type: $(BIN)/ploutos
	$(BIN)/mypy ploutos_core

tox: $(BIN)/ploutos
	$(BIN)/tox $(ARGS)

clean:
	rm -rf $(VENV) .tox build *.egg-info
