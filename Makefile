# Two commands on a fresh machine with python3, make and git:
#   make demo   runs the main job on the bundled example
#   make test   runs the whole test suite (installing Debian's prometheus first when missing)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install prometheus demo test lint schemas bench lock clean

$(STAMP): requirements.lock pyproject.toml
	rm -f $(VENV)/.installed-*
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

install: $(STAMP)

# Canary analysis queries a real Prometheus: Debian's package, installed here when the
# binary is missing (apt-get as root or with sudo; its system service is not started).
prometheus:
	@sh scripts/install-prometheus.sh

# The whole loop on the bundled example: validate -> policy -> plan -> apply (data gate,
# train, metric gate, Staging, model card) -> two approvals -> apply (Production, then
# served on 127.0.0.1) -> audit -> a caller, and a real prediction through the endpoint.
demo: $(STAMP) prometheus
	$(BIN)/modelplane validate
	$(BIN)/modelplane plan
	$(BIN)/modelplane apply
	$(BIN)/modelplane approve breast-cancer-classifier Staging --as alice || echo "(no version waiting in Staging)"
	$(BIN)/modelplane approve breast-cancer-classifier Staging --as bob || echo "(no version waiting in Staging)"
	$(BIN)/modelplane apply
	$(BIN)/modelplane status
	$(BIN)/modelplane registry list
	$(BIN)/modelplane audit verify
	$(BIN)/modelplane serve status
	$(BIN)/modelplane serve caller remove demo-clinician >/dev/null 2>&1 || true
	@TOKEN=$$($(BIN)/modelplane serve caller add demo-clinician --group clinicians) && \
	URL=$$($(BIN)/modelplane serve url breast-cancer-api) && \
	echo "POST $$URL/v1/models/breast-cancer-api:predict  (docs/examples/predict-v1.json)" && \
	curl -sS --fail-with-body -H "Authorization: Bearer $$TOKEN" -H "X-Consent: true" \
	  -H "Content-Type: application/json" -d @docs/examples/predict-v1.json \
	  "$$URL/v1/models/breast-cancer-api:predict" && echo
	@echo "The service keeps running: 'modelplane serve status', 'modelplane serve stop --all'."

# Lint, types, the import layers (DESIGN.md section 3), then pytest on both cores.
test: $(STAMP) prometheus
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest -n 2

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

schemas: $(STAMP)
	$(BIN)/modelplane schemas generate

bench: $(STAMP)
	$(BIN)/python bench/validate_bench.py

lock: $(STAMP)
	{ echo '# Exact versions for every machine (make installs these, then the project with --no-deps).'; echo '# Regenerate: make lock'; $(BIN)/python -m pip freeze --all --exclude-editable | grep -v '^pip==' | sort -f; } > requirements.lock.new && mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
