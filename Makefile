# Two commands for a fresh machine with Python 3.10+: `make run` and `make test`.
# Each creates .venv when missing and (re)installs the project when pyproject.toml changed.

PYTHON ?= python3
VENV := .venv
INSTALLED := $(VENV)/.installed

.PHONY: run test clean

run: $(INSTALLED)
	$(VENV)/bin/edgebench run

# One pytest worker per core: most tests wait on subprocesses (CLI, workers, servers), so the
# cores are otherwise half idle.
test: $(INSTALLED)
	$(VENV)/bin/python -m pytest -n auto

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "edgebench needs Python 3.10 or newer; set PYTHON=python3.x")'
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info
