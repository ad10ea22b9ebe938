# Two entry points on a fresh CPU machine (Python 3.11, pip, node/npm):
#   make demo   install everything, run every numbered notebook on its embedded defaults into outputs/demo/
#   make test   install everything, run the library tests and every notebook under nbval
PY      ?= python3.11
VENV    ?= .venv
BIN     := $(VENV)/bin
RUN     ?= demo
STAMP   := $(VENV)/.installed

.PHONY: setup demo test test-fast nbtest-prepare clean-nbtest help

help:
	@echo "make demo   - install, then run all notebooks (papermill) into outputs/$(RUN)/ with HTML renders"
	@echo "make test   - install, then pytest (library) + nbval (notebooks, shrunken test params)"
	@echo "make setup  - only install (.venv from requirements.txt + editable tacsol, node_modules from package.json)"

# One pip install with torch pinned alongside everything (no CUDA build can sneak in).
$(STAMP): requirements.txt pyproject.toml package.json
	@command -v $(PY) >/dev/null || { echo "need $(PY) on PATH (or: make PY=python3 ...)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	npm install --no-audit --no-fund --loglevel=error
	@# headless Chromium for the report test (Debian packages; needs root, else the browser test is skipped)
	@command -v chromedriver >/dev/null || { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
		else echo "note: install Debian chromium + chromium-driver (as root) for the report browser test"; fi; }
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/tacsol run all --run-name $(RUN)

# Notebooks are executed with shrunken params from tests/params/ (papermill --prepare-only injects them),
# then nbval runs the prepared copies in lax mode alongside the library tests, in one pytest session.
nbtest-prepare: $(STAMP)
	$(BIN)/python -m tacsol.nbtest prepare --out .nbtest

test: nbtest-prepare
	$(BIN)/python -m pytest -q tests .nbtest --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg \
		--nbval-cell-timeout=1200 -p no:cacheprovider

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q tests -m "not slow"

clean-nbtest:
	rm -rf .nbtest
