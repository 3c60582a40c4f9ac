# The README's commands. Both build .venv from scratch on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch unless a CUDA driver is present (an unpinned torch is a multi-GB CUDA build).
TORCH_CPU ?= torch==2.13.0

.PHONY: demo test lint typecheck bench chaos install clean

$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		$(PY) -m pip install -q -e '.[gpu,test,eval]'; \
	else \
		$(PY) -m pip install -q '$(TORCH_CPU)' && $(PY) -m pip install -q -e '.[cpu,test,eval]'; \
	fi
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/feedrec demo

test: install lint typecheck
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check streams model index tests docs
	$(VENV)/bin/ruff format --check streams model index tests docs

# mypy finds modules by their paths, and feedrec.* lives in model/, index/ and streams/: it reads
# them through a tree of links named as they import (build/typecheck/feedrec/model -> model/).
TYPECHECK := build/typecheck
typecheck: install
	@mkdir -p $(TYPECHECK)/feedrec
	@for d in model index streams; do ln -sfn $(CURDIR)/$$d $(TYPECHECK)/feedrec/$$d; done
	@ln -sfn $(CURDIR)/tests $(TYPECHECK)/tests
	cd $(TYPECHECK) && $(CURDIR)/$(PY) -m mypy --config-file $(CURDIR)/pyproject.toml -p feedrec -p tests

bench: install
	$(VENV)/bin/feedrec bench --output docs/benchmarks.json

# The long crash run (20 SIGKILLs over a backlog and a steady flow, several minutes); prints its
# figures, and writes them as JSON to $FEEDREC_CHAOS_JSON when set (make chaos FEEDREC_CHAOS_JSON=F).
chaos: install
	$(PY) -m pytest -q -s -m chaos tests/integration/test_crash.py

clean:
	rm -rf $(VENV) .feedrec feedrec-demo.png build
