# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv when missing.
VENV ?= .venv
PY := $(VENV)/bin/python
JOBS ?= 2

.PHONY: setup demo demo-long demo-uniform test bench reproduce-mini clean-venv

$(VENV)/.installed: setup.py constraints.txt
	@set -e; py=$$(scripts/find_python.sh); echo "using $$py"; \
	  [ -x $(PY) ] || $$py -m venv $(VENV); \
	  $(PY) -m pip install -q --upgrade pip wheel; \
	  $(PY) -m pip install -q -c constraints.txt -e '.[test]'; \
	  $(PY) -m pip install -q --no-deps nnabla-converter==1.39.0; \
	  touch $@

setup: $(VENV)/.installed

# the whole DetOFA pipeline (Algorithm 1) on the embedded synthetic data, on CPU
demo: setup
	$(VENV)/bin/nnabla_nas -f examples/demo_detofa.json -c cpu -o runs/demo_detofa

# the same pipeline trained longer (2,880 steps: detects better, about 2.5x the time)
demo-long: setup
	$(VENV)/bin/nnabla_nas -f examples/demo_detofa_long.json -c cpu -o runs/demo_detofa_long

# the baseline: OFA w/o PS (uniform path sampling) on the same kind of data
demo-uniform: setup
	$(VENV)/bin/nnabla_nas -f examples/demo_ofa_uniform.json -c cpu -o runs/demo_ofa_uniform

test: setup
	$(PY) -m pytest -q -n $(JOBS) tests

bench: setup
	$(PY) benchmarks/run_all.py

# DetOFA vs OFA w/o PS at equal epochs on the synthetic data, searched at the same budgets, then
# `report` (runs/mini/report/report.md); resumes where it stopped
reproduce-mini: setup
	PY=$(PY) scripts/reproduce_mini.sh

clean-venv:
	rm -rf $(VENV)
