# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/oms migrate
	$(BIN)/oms demo --if-empty
	@echo "oms: http://$(HOST):$(PORT)  API docs: http://$(HOST):$(PORT)/docs"
	@echo "admin key: $$(cat .oms-demo-key)"
	OMS_EGRESS_ALLOW_PRIVATE=$${OMS_EGRESS_ALLOW_PRIVATE:-$${OMS_WEBHOOK_ALLOW_PRIVATE:-true}} $(BIN)/oms serve --with-worker --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

test: install lint
	$(BIN)/pytest -n auto

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) oms.db oms.db-wal oms.db-shm .oms-demo-key
