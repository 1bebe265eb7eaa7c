# The front door. CMake does the building underneath.
#   make          build ./build/slm
#   make run      build, fetch the default model once, generate from a demo prompt
#   make test     build and run the whole test suite (plain, ASan+UBSan, fuzzers)
#   make deps     install the Debian packages the build and the tests use (scripts/deps.sh)
#   make events   fine-tune Gemma 3 270M on event extraction, end to end (scripts/events.sh)
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
MODEL := $(or $(SLM_MODELS),$(HOME)/.cache/slm/models)/gemma-3-270m-q4_k_m.gguf
PROMPT ?= The capital of France is

.PHONY: all build model run test test-quick deps events clean

all: build

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DSLM_TEST_MODEL=$(MODEL) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@./$(BUILD)/slm --help | grep -q '^  serve.*not in this build' && \
	  echo "warning: ./$(BUILD)/slm is built without \`serve\` (libmicrohttpd and cJSON not found): \`make deps\`, then \`make\`" >&2 || true
	@./scripts/deps.sh --check 2>&1 | sed 's/^/note: /' >&2 || true

model:
	@./scripts/fetch_model.sh >/dev/null

run: build model
	./$(BUILD)/slm run -p "$(PROMPT)" -n 48 --temp 0 -v

# Plain build + tests, then the sanitizer build + tests, then each fuzzer.
test: model
	@./scripts/run_tests.sh

# Only the plain build's tests.
test-quick: build model
	@cd $(BUILD) && ctest --output-on-failure

deps:
	@./scripts/deps.sh

# Generate the data, fine-tune, merge, quantize, evaluate (docs/TRAINING.md, "The task").
events: build model
	@SLM_BIN=./$(BUILD)/slm ./scripts/events.sh

clean:
	rm -rf $(BUILD) build-asan build-fuzz
