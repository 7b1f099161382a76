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

run: $(STAMP) $(if $(LMEB_DATA),,$(SAMPLE)/.done)
	$(BIN)/python -m lmeb.main_job --data "$(DATA)" --output "$(RESULTS)"

clean:
	rm -rf $(VENV) .cache $(RESULTS) leaderboard/site
