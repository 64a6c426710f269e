# Two commands on a fresh machine:
#   make demo   run the main job on the embedded default data (results under runs/$(PROFILE)/)
#   make test   install everything into .venv and run the whole test suite, notebooks included
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= cpu
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The gallery, then every numbered notebook headless in order (a line per notebook with its
# time, training bars echoed); executed notebooks, metrics.json, table.md and figures land in
# runs/$(PROFILE)/report/. Finished checkpoints are reused.
demo: $(STAMP)
	$(PY) -m unmasklib.demo --profile $(PROFILE)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -p no:nbval -q
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
		UNMASK_PROFILE=smoke $(PY) -m pytest --nbval-lax -q notebooks/; fi

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) benchmarks/bench_render.py
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_phase1.py
	$(PY) benchmarks/bench_phase2.py
	$(PY) benchmarks/bench_editing.py
	$(PY) benchmarks/bench_real_faces.py

clean:
	rm -rf $(VENV) runs
