# Two commands for a fresh machine with Python 3.10+: `make run` and `make test`.
# Each creates .venv when missing and (re)installs the project when pyproject.toml changed.

PYTHON ?= python3
VENV := .venv
INSTALLED := $(VENV)/.installed
# An older ONNX Runtime beside the project's, for the tests of `regress --confirm --reference-python`:
# only what a worker needs (numpy, onnxruntime, edgebench without its dependencies).
REFERENCE := .venv-reference
REFERENCE_ONNXRUNTIME := 1.31.1

.PHONY: run test clean

run: $(INSTALLED)
	$(VENV)/bin/edgebench run

# One pytest worker per core: most tests wait on subprocesses (CLI, workers, servers), so the
# cores are otherwise half idle.
test: $(INSTALLED) $(REFERENCE)/.installed
	$(VENV)/bin/python -m pytest -n auto

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "edgebench needs Python 3.10 or newer; set PYTHON=python3.x")'
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $@

# Where that ONNX Runtime cannot be installed, the tests that need it skip with their reason.
$(REFERENCE)/.installed: pyproject.toml
	test -x $(REFERENCE)/bin/python || $(PYTHON) -m venv $(REFERENCE)
	$(REFERENCE)/bin/python -m pip install --quiet onnxruntime==$(REFERENCE_ONNXRUNTIME) numpy \
		&& $(REFERENCE)/bin/python -m pip install --quiet --no-deps -e . \
		|| echo "note: no onnxruntime $(REFERENCE_ONNXRUNTIME) here; the tests of a second runtime will be skipped" >&2
	touch $@

clean:
	rm -rf $(VENV) $(REFERENCE) build *.egg-info
