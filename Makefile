# Tunesmith: `make run` and `make test` are the only two set-up commands a user needs.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp-install
S3RVER := .tools/node_modules/.bin/s3rver
DEBIAN_PACKAGES := fluidsynth musescore-general-soundfont-small musescore-general-soundfont fluid-soundfont-gm ffmpeg postgresql redis-server chromium mma hydrogen-drumkits hydrogen-data lmms-common nodejs

.PHONY: run test lint setup system-deps python-deps demo clean

demo: setup
	$(VENV)/bin/tunesmith demo --out out

run: setup
	$(VENV)/bin/tunesmith serve

test: setup $(S3RVER)
	$(VENV)/bin/ruff check tunesmith tests
	TUNESMITH_TEST_REQUIRE=postgresql,redis,chromium,s3,netns $(VENV)/bin/pytest -q

lint: setup
	$(VENV)/bin/ruff check tunesmith tests

setup: system-deps python-deps

# Debian packages: install what is missing (root), or say in one line what to install.
system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages; run: sudo apt-get install$$missing"; exit 1; \
	  fi; \
	fi

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required (python3.11 not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e '.[dev]'
	@touch $(STAMP)

python-deps: $(STAMP)

# The tests' S3 server (s3rver, Node.js), installed once into a gitignored folder.
$(S3RVER):
	@command -v npm >/dev/null 2>&1 || { echo "npm is required for the tests' S3 server (Debian package npm)"; exit 1; }
	npm install --prefix .tools --no-audit --no-fund --silent s3rver@3.7.1

clean:
	rm -rf $(VENV) out runs .pytest_cache .ruff_cache .tools
