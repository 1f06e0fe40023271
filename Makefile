# The front door. Every target makes the virtual environment it needs itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install browser demo serve test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
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

demo: install
	$(BIN)/python -m voicechat demo

serve: install
	$(BIN)/python -m voicechat serve

test: install browser
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
