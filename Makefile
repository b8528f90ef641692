# AccelIR: the two commands are `make run` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: run demo test install lint typecheck bench data clean

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Install once per change of pyproject.toml or of the C decoder. torch is installed first and
# pinned, so pip takes the CPU build where one is provided (find-links) instead of resolving a
# CUDA build. The editable install compiles accelir/codec/_blockdecode.c against the system's
# libjpeg-turbo (Debian: libjpeg62-turbo-dev); without it the install still succeeds and decode
# uses simplejpeg (tests/test_codec_engines.py says so loudly).
$(STAMP): pyproject.toml setup.py accelir/codec/_blockdecode.c | $(PY)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m service.run

demo: $(STAMP)
	$(VENV)/bin/accelir demo

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check accelir service worker tests benchmarks
	$(VENV)/bin/ruff format --check accelir service worker tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy accelir

bench: $(STAMP)
	$(PY) benchmarks/codec_vs_pillow.py

data: $(STAMP)
	$(VENV)/bin/accelir data fetch

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
