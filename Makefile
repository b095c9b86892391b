# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv on first use. torch is installed first and pinned so that a CPU
# machine takes the local CPU wheel; for CUDA run e.g.
#   make TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126" test
PYTHON ?= $(shell command -v python3.11 || command -v python3)
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
# The spec the venv's torch was installed from: another TORCH_SPEC rebuilds the venv
# (pip would keep an installed torch 2.13.0+cpu for "torch==2.13.0 --index-url .../cu126").
TORCH_STAMP := $(VENV)/.torch-spec
ifneq ($(strip $(shell cat $(TORCH_STAMP) 2>/dev/null)),$(strip $(TORCH_SPEC)))
.PHONY: $(VENV)/.installed
endif

.PHONY: venv test demo demo-ablation bench lint format clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	if [ "$$(cat $(TORCH_STAMP) 2>/dev/null)" != '$(TORCH_SPEC)' ]; then \
	  $(PY) -m pip uninstall -q -y torch; fi
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) scripts/check_torch.py $(TORCH_SPEC)
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .  # the packages (pyproject.toml)
	echo '$(TORCH_SPEC)' > $(TORCH_STAMP)
	touch $@

test: venv
	$(PY) -m pytest -q

demo: venv
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" sh scripts/demo.sh

demo-ablation: venv
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" sh scripts/demo.sh --ablation

bench: venv
	$(PY) -m bench.bench --workload base,demo

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
