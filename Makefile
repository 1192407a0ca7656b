# Two entry points: `make demo` (set up, then the whole loop on a demo corpus made from this machine's Python
# installation: build, sample to a preset, train a tiny model with replay, audit to HTML) and `make test` (set up,
# then run the tests); `make lint` runs ruff (configured in pyproject.toml), as CI does.
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

DEMO ?= out/demo

demo: setup
	$(BIN)/replaymill build --output $(DEMO)/shards --demo-mb 3 --overwrite
	$(BIN)/replaymill sample --input $(DEMO)/shards --target pile --tokens 300000 --on-short renormalize \
	    --output $(DEMO)/replay --overwrite
	$(BIN)/python -m replaymill.pipeline.demo_corpus --task $(DEMO)/task.txt
	rm -rf $(DEMO)/run
	$(BIN)/replaymill train --model tiny-gpt2 --task $(DEMO)/task.txt --replay $(DEMO)/replay --replay-ratio 0.25 \
	    --steps 30 --warmup 5 --lr 1e-3 --seq-len 128 --batch-size 8 --eval-every 15 --eval-tokens 4096 \
	    --output $(DEMO)/run
	$(BIN)/replaymill audit $(DEMO)/replay --target pile --html $(DEMO)/audit.html --json $(DEMO)/audit.json -q
	@echo
	@echo "demo outputs:"
	@echo "  shard set (build)     $(DEMO)/shards   (manifest: $(DEMO)/shards/_manifest.json)"
	@echo "  replay set (sample)   $(DEMO)/replay   (target vs achieved: _manifest.json, extra.sampling)"
	@echo "  task text             $(DEMO)/task.txt"
	@echo "  fine-tuned model      $(DEMO)/run/final  (log: $(DEMO)/run/log.jsonl, curves: $(DEMO)/run/curves.png)"
	@echo "  audit report          $(DEMO)/audit.html  (JSON: $(DEMO)/audit.json)"

test: setup
	$(BIN)/python -m pytest -n 2 -q

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python bench/build_throughput.py

clean:
	rm -rf out .pytest_cache
