# The README's commands. `make test` and `make book` set up .venv themselves.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# The offline data copy beside the checkout, when there is one (tests never download).
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)),)
export VARHYPER_DATA ?= $(SHARED_DATA)
endif

.PHONY: install test lint format unit chapters book book-student site-test student-test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[book,test]"
	@touch $(STAMP)

CODE := varhyper_mini tests benchmarks tools _ext chapters $(wildcard assignments)

lint: $(STAMP)
	$(VENV)/bin/ruff check $(CODE)
	$(VENV)/bin/ruff format --check $(CODE)

format: $(STAMP)
	$(VENV)/bin/ruff format $(CODE)
	$(VENV)/bin/ruff check --fix $(CODE)

unit: $(STAMP)
	VARHYPER_QUICK=1 $(PY) -m pytest tests

chapters: $(STAMP)
	VARHYPER_QUICK=1 $(PY) -m pytest --nbmake --nbmake-timeout=600 $(NOTEBOOK_DIRS)

NOTEBOOK_DIRS := chapters $(wildcard assignments) $(wildcard *.ipynb)

test: $(STAMP) lint
	VARHYPER_QUICK=1 $(PY) -m pytest tests --nbmake --nbmake-timeout=600 $(NOTEBOOK_DIRS)

book: $(STAMP)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

# The student edition: every exercise solution left out, into _build/student/_build/html. It reuses
# the notebooks that the last `make book` executed, and executes only those whose code changed since.
book-student: $(STAMP)
	$(PY) tools/build_student.py

# The built site in headless Chromium (run after `make book`).
site-test: $(STAMP)
	$(PY) -m pytest tests/test_site.py -v

# The student edition against the default build (no solution text left), then in Chromium.
student-test: $(STAMP)
	$(PY) -m pytest tests/test_student_edition.py -v
	VARHYPER_SITE=_build/student/_build/html $(PY) -m pytest tests/test_site.py -v

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf _build .pytest_cache
