# Two entry points: `make demo` (set up, then build the demo corpus) and `make test` (set up, then run the tests);
# `make lint` runs ruff (configured in pyproject.toml), as CI does.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench clean

$(BIN)/replaymill: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[train,lora,aws,dev]'
	touch $(BIN)/replaymill

setup: $(BIN)/replaymill

demo: setup
	$(BIN)/replaymill build --output out/demo --overwrite

test: setup
	$(BIN)/python -m pytest -n 2 -q

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python bench/build_throughput.py

clean:
	rm -rf out .pytest_cache
