# Set-up and tests. `make install` creates .venv with everything (mmsegmentation included);
# `make test` runs the test suite in it.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: install install-core install-mmseg install-mmseg-ops test clean weights

install: install-core install-mmseg

install-core:
	test -x $(PY) || python3 -m venv $(VENV)
	# CPU build of torch first: an unpinned torch can pull a multi-GB CUDA build.
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[test]'

# mmsegmentation (ADE20K segmenters) through the maintained onedl fork. mmcv builds its C++
# ops only when its build sees torch; built in pip's isolated environment (no torch) it
# installs without them in about a minute, and the default SegFormer config needs none.
# `make install-mmseg-ops` rebuilds mmcv against the installed torch with its ops (about
# 15 minutes on 2 cores), for configs that need them.
install-mmseg:
	$(PIP) install onedl-mmcv==2.3.6 onedl-mmsegmentation==1.4.2 ftfy regex

install-mmseg-ops:
	$(PIP) install ninja wheel setuptools
	MAX_JOBS=2 $(PIP) install --no-build-isolation --no-cache-dir --force-reinstall --no-deps onedl-mmcv==2.3.6

test:
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# Rebuild the shipped generator from ../shared/data (weights/README.md has the recipe and
# its figures). Resumable: run it again after an interruption and it continues from the
# last checkpoint (a run stopped before its first checkpoint starts over). When it ends,
# RUN/best/ holds the generator that scored best on the validation sequences, and
# RUN/lights/ the same with its night stage's light head trained (what weights/ ships).
DATA ?= ../shared/data/timelapse
RUN ?= runs/weights
STEPS ?= 1000
weights:
	OMP_NUM_THREADS=1 $(VENV)/bin/timeflies train --data $(DATA) --out $(RUN) --recipe fast --holdout --seed 0 \
		--max-steps $(STEPS) --val-every 100 --save-every 100 \
		$$(if test -f $(RUN)/checkpoint/state.pt; then echo --resume; \
		   elif test -f $(RUN)/run.json; then echo --overwrite; fi)
	OMP_NUM_THREADS=1 $(VENV)/bin/timeflies train-lights --data $(DATA) --init $(RUN)/best --holdout --seed 0 \
		--steps 300 --out $(RUN)/lights --overwrite
	$(PY) -c "from timelapse_cli.weights import export; export('$(RUN)/lights')"
	@echo "weights/ now holds $(RUN)/lights; pin its sums in timelapse_cli/weights.py (SHIPPED_SHA256)"
