# Two commands set up and run everything on a fresh machine:
#   make course   execute every notebook (smoke profile: synthetic data, offline) into build/course/
#   make test     the whole test suite (unit tests, every notebook under papermill and nbval)
# Both create .venv/ on first use and install the course into it; later runs reuse it and
# never touch the network (the install step re-runs only when pyproject.toml changes).

PYTHON ?= python3
VENV ?= .venv
PROFILE ?= smoke
BIN := $(VENV)/bin
STAMP := $(VENV)/.tlcnn-installed

.PHONY: course test lab lint normalize clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[course,dev]"
	@touch $(STAMP)

course: $(STAMP)
	$(BIN)/python -m tlcnn_helpers course --profile $(PROFILE) --out build/course

test: $(STAMP)
	$(BIN)/python -m pytest

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python tools/normalize_notebooks.py --check

normalize: $(STAMP)
	$(BIN)/python tools/normalize_notebooks.py

clean:
	rm -rf build
