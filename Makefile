# Two commands: `make run` starts the appliance on its embedded defaults, `make test` runs every test.
# Both bootstrap what they need (Debian packages via apt-get, .venv via python3 -m venv).

VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bootstrap lint samples bench fuzz clean

bootstrap:
	@./scripts/bootstrap.sh

run: bootstrap
	$(BIN)/transfer-agent serve --data-dir var

# pytest-xdist: TEST_WORKERS processes, each taking a whole test file at a time (module fixtures start
# their servers once). Most tests wait on real servers and subprocesses, so two workers overlap that
# waiting on a 2-core box (three were slower there). TEST_WORKERS=0 runs serially.
TEST_WORKERS ?= 2
test: bootstrap
	$(BIN)/ruff check cdr transfer_agent samples benchmarks tests
	$(BIN)/python -m pytest -q -ra --durations=25 -n $(TEST_WORKERS) --dist loadfile

lint: bootstrap
	$(BIN)/ruff check cdr transfer_agent samples benchmarks tests

samples: bootstrap
	$(BIN)/python -m samples

bench: bootstrap
	$(BIN)/python -m benchmarks --quick

# Mutation fuzzing (cdr/fuzz/): `make fuzz HOURS=1`; findings are saved under tests/fuzz_regressions/.
HOURS ?= 1
fuzz: bootstrap
	mkdir -p var
	nice -n 10 $(BIN)/python -m cdr.fuzz --hours $(HOURS) --save tests/fuzz_regressions --json var/fuzz-last.json

clean:
	rm -rf var samples/generated .pytest_cache
