# The README's two quick-start commands: `make run` (the main job) and `make test` (the suite).
# Both install what they need into .venv first. torch is pinned by constraints.txt to 2.13.0, the CPU
# wheel this machine carries; any other torch request would download several GB of CUDA packages.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
OUT    ?= runs/tour
PYTEST_ARGS ?=

.PHONY: run test install browser clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $@

run: install
	$(BIN)/actlab run --out $(OUT)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Debian's chromium for the browser tests (they skip without it, except under CI=true); needs root.
browser:
	command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium)

clean:
	rm -rf $(VENV) runs .pytest_cache
