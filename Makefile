# The README's commands. Both build .venv from scratch on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch unless a CUDA driver is present (an unpinned torch is a multi-GB CUDA build).
TORCH_CPU ?= torch==2.13.0

.PHONY: demo test lint bench install clean

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

test: install lint
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check streams model index tests

bench: install
	$(VENV)/bin/feedrec bench --output docs/benchmarks.json

clean:
	rm -rf $(VENV) .feedrec feedrec-demo.png
