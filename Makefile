# Two commands: `make run` starts the appliance on its embedded defaults, `make test` runs every test.
# Both bootstrap what they need (Debian packages via apt-get, .venv via python3 -m venv).

VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bootstrap lint samples bench clean

bootstrap:
	@./scripts/bootstrap.sh

run: bootstrap
	$(BIN)/transfer-agent serve --data-dir var

test: bootstrap
	$(BIN)/ruff check cdr transfer_agent samples benchmarks tests
	$(BIN)/python -m pytest -q -ra

lint: bootstrap
	$(BIN)/ruff check cdr transfer_agent samples benchmarks tests

samples: bootstrap
	$(BIN)/python -m samples

bench: bootstrap
	$(BIN)/python -m benchmarks --quick

clean:
	rm -rf var samples/generated .pytest_cache
