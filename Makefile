# Two entry points (see README): `make demo` and `make test`.
# Each creates or reuses the local virtualenv .venv and installs the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)

.PHONY: demo test bench bench-pii java venv jars

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found %s)" % sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	# pycanon (tests only: independent k/l cross-check) pins numpy==2.0.2 and typer==0.23.2
	# exactly, which conflict with this stack; the functions the tests use need only
	# pandas and numpy, so it is installed without its dependencies.
	$(BIN)/python -m pip install -q --no-deps 'pycanon==1.3.6'
	@rm -f $(VENV)/.installed-* && touch $@

# One clear line when Java is missing or older than 17.
java:
	@v=$$(java -version 2>&1 | awk -F'"' '/version/ {print $$2}' | awk -F. '{print ($$1 == "1") ? $$2 : $$1}'); \
	if [ -z "$$v" ] || [ "$$v" -lt 17 ]; then \
	  echo "Java 17+ is required by Spark (found: $${v:-none}); install a JDK, e.g. 'sudo apt-get install openjdk-17-jdk-headless' or 'brew install openjdk@17', and put it on PATH or set JAVA_HOME."; exit 1; \
	fi
	@command -v javac >/dev/null || { echo "javac (a JDK 17) is required to build the PII screen jar (pipelines/pii/java/): install e.g. 'sudo apt-get install openjdk-17-jdk-headless'."; exit 1; }

demo: java venv
	$(BIN)/anonymize demo

# Table-format jars (Iceberg, Delta Lake): pinned in pipelines/jars.py, fetched once from
# Maven Central into .jars/ and checked against their SHA-256; never fetched at run time.
# Then the PII screen's own jar, compiled from pipelines/pii/java/ by the JDK (a session
# would build it on first use too).
JARS_STAMP := .jars/.fetched-$(shell cksum < pipelines/jars.py | cut -d' ' -f1)
jars: $(JARS_STAMP)
	$(BIN)/python -m pipelines.pii.native

$(JARS_STAMP): pipelines/jars.py | venv
	$(BIN)/python -m pipelines.jars fetch
	@rm -f .jars/.fetched-* && touch $@

test: java venv jars
	$(BIN)/ruff check pipelines jobs dags tests benchmarks
	$(BIN)/pydoclint --config pyproject.toml pipelines dags jobs
	$(BIN)/python -m pytest


bench: java venv
	$(BIN)/python benchmarks/desensitize_bench.py

# Free-text PII detection against Microsoft Presidio (benchmarks/pii_text_eval.py).
# Presidio lives in its own virtualenv (.venv-presidio), used by that benchmark only;
# Faker (the corpus's independent PII source) is installed into .venv.
PRESIDIO := .venv-presidio
$(PRESIDIO)/.installed: Makefile benchmarks/presidio-constraints.txt
	@test -x $(PRESIDIO)/bin/python || $(PYTHON) -m venv $(PRESIDIO)
	$(PRESIDIO)/bin/python -m pip install -q -c benchmarks/presidio-constraints.txt 'presidio-analyzer==2.2.366' 'presidio-anonymizer==2.2.366'
	@touch $@

bench-pii: java venv $(PRESIDIO)/.installed
	$(BIN)/python -m pip install -q 'faker==40.54.0'
	$(BIN)/python benchmarks/pii_text_eval.py
