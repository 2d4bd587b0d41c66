# Two commands set up a fresh machine by themselves: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# Debian packages the test suite needs: a real IMAP server and the browser that drives
# the add-in pages (Playwright uses it through executable_path; nothing is downloaded).
# Node and npm are installed only when the commands are missing: a machine may have them
# from elsewhere (NodeSource's nodejs bundles npm and conflicts with Debian's npm).
SYSTEM_PACKAGES ?= dovecot-imapd chromium
NODE_PACKAGES ?= nodejs npm

.PHONY: install addins system-deps demo test lint format bench clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned to the local CPU build, so nothing pulls a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed addins

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

demo: install
	HF_HUB_OFFLINE=1 $(BIN)/copilot demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: system-deps install lint
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
