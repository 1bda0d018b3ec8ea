# Front door. `make run` and `make test` work on a fresh machine (they run scripts/setup first).
PRESET ?= dev
BUILD := build/$(PRESET)
JOBS ?= 2
FUZZ_SECONDS ?= 60

.PHONY: all setup configure build run run-worker test test-python test-sanitizers bench bench-web bench-django fuzz fuzz-smoke format clean

all: build

setup:
	@scripts/setup

configure: setup
	cmake --preset $(PRESET) >/dev/null

build: configure
	cmake --build --preset $(PRESET) -j $(JOBS)

# The example service (molt::web + molt::db): http://localhost:8080, on an embedded SQLite
# file created and seeded in the working folder on first run. The worker: make run-worker.
run: PRESET = release
run: build
	build/release/apps/molt-demo/molt-demo --port 8080

# The stock worker on its built-in manifest, speaking frames on stdio.
run-worker: PRESET = release
run-worker: build
	build/release/apps/molt-worker/molt-worker --stdio

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	$(MAKE) --no-print-directory test-python
	scripts/check-wheel
	scripts/check-install $(BUILD)
	$(MAKE) --no-print-directory fuzz-smoke

# molt_accel and the Django demo against the real binaries of $(BUILD).
test-python: build
	.venv/bin/ruff check python demo bench
	.venv/bin/ruff format --check python demo bench
	MOLT_REQUIRE_WORKER=1 \
	MOLT_WORKER_BIN=$(BUILD)/apps/molt-worker/molt-worker \
	MOLT_TEST_WORKER_BIN=$(BUILD)/tests/e2e/molt-test-worker \
	MOLT_SEED_BIN=$(BUILD)/apps/molt-seed/molt-seed \
	MOLT_DEMO_BIN=$(BUILD)/apps/molt-demo/molt-demo \
	.venv/bin/pytest -q

test-sanitizers: setup
	$(MAKE) --no-print-directory PRESET=asan build
	ctest --test-dir build/asan --output-on-failure -j $(JOBS)
	$(MAKE) --no-print-directory PRESET=tsan build
	ctest --test-dir build/tsan --output-on-failure -j $(JOBS)

bench: PRESET = release
bench: build
	bench/run_worker_bench.sh build/release
	bench/run_db_bench.sh build/release

# molt::web against FastAPI/uvicorn, granian and a bare Beast server (about 10 minutes).
bench-web: PRESET = release
bench-web: build
	.venv/bin/python bench/run_web_bench.py build/release --callgrind --idle 10000

# Django under gunicorn: ORM, raw SQL and @molt_offload, with Django's own floor.
bench-django: PRESET = release
bench-django: build
	.venv/bin/python bench/django_bench.py build/release/apps/molt-worker/molt-worker
	.venv/bin/python bench/django_bench.py build/release/apps/molt-worker/molt-worker --worker-class gthread
	.venv/bin/python bench/python_client_overhead.py build/release/apps/molt-worker/molt-worker

fuzz: setup
	cmake --preset fuzz >/dev/null && cmake --build --preset fuzz -j $(JOBS)
	fuzz/run.sh build/fuzz $(FUZZ_SECONDS)

fuzz-smoke: setup
	cmake --preset fuzz >/dev/null && cmake --build --preset fuzz -j $(JOBS)
	fuzz/run.sh build/fuzz 10

format:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format -i
	.venv/bin/ruff format python demo bench

clean:
	rm -rf build
