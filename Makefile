# Two entry points (see README): `make demo` and `make test`.
# Each creates or reuses the local virtualenv .venv and installs the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test bench java venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found %s)" % sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

# One clear line when Java is missing or older than 17.
java:
	@v=$$(java -version 2>&1 | awk -F'"' '/version/ {print $$2}' | awk -F. '{print ($$1 == "1") ? $$2 : $$1}'); \
	if [ -z "$$v" ] || [ "$$v" -lt 17 ]; then \
	  echo "Java 17+ is required by Spark (found: $${v:-none}); install it, e.g. 'sudo apt-get install openjdk-17-jre-headless' or 'brew install openjdk@17', and put it on PATH or set JAVA_HOME."; exit 1; \
	fi

demo: java venv
	$(BIN)/anonymize demo

test: java venv
	$(BIN)/ruff check pipelines jobs tests benchmarks
	$(BIN)/python -m pytest


bench: java venv
	$(BIN)/python benchmarks/desensitize_bench.py
