# zhiku: `make run` installs, ingests the sample corpus, serves and answers; `make test` tests.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.zhiku-installed
MODELS := .models
DATA   ?= ./zhiku-data
HOST   ?= 127.0.0.1
PORT   ?= 8000
export DO_NOT_TRACK := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install models run serve test test-unit test-integration bench clean

install: $(STAMP)

# torch first and pinned, so nothing later can pull a multi-GB CUDA build.
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c requirements.lock -e ".[test,bench]"
	touch $(STAMP)

models: install

run: models
	$(VENV)/bin/zhiku ingest deploy/sample-corpus --collection sample --data-dir $(DATA)
	$(VENV)/bin/zhiku search "What is hybrid retrieval?" --collection sample --data-dir $(DATA) -k 3

test: install
	$(PY) -m pytest -q

test-unit: install
	$(PY) -m pytest -q -m "not integration"

test-integration: install
	$(PY) -m pytest -q -m integration

bench: install
	$(PY) bench/retrieval_quality.py
	$(PY) bench/search_latency.py

clean:
	rm -rf $(VENV) $(MODELS) build *.egg-info
