# The README's two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
export YOLO_OFFLINE := 1
export YOLO_AUTOINSTALL := false

.PHONY: run test lint install install-test frontend migrate demo check bench-import

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	# Demo data: deepforest's labeled photos, read by path; its code is not needed.
	$(PIP) install --quiet --no-deps deepforest==2.1.0
	# Face detection for privacy blurring: MTCNN with its weights in the package. Its declared
	# deps pin old torch; what it imports (torch, torchvision, requests, tqdm) is installed.
	$(PIP) install --quiet --no-deps facenet-pytorch==2.6.0
	touch $@

install: $(STAMP)

$(TEST_STAMP): $(STAMP) requirements-test.txt
	$(PIP) install --quiet -r requirements-test.txt
	bash .ci/ensure-chromium
	bash .ci/ensure-compose
	touch $@

install-test: $(TEST_STAMP)

frontend:
	if [ -f frontend/package.json ]; then cd frontend && npm ci --no-audit --no-fund && npm run build; fi

migrate: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0

demo: migrate
	$(PY) manage.py seed_demo

# 1) Run VISION with embedded defaults (SQLite, file-system broker) on http://127.0.0.1:8000
run: install frontend migrate demo
	$(PY) -m vision_project.launcher

# The linters and the type check (part of make test).
lint: install-test frontend
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache
	cd frontend && npm run lint

# 2) Run the whole test suite: DATABASE_URL / REDIS_URL when set, else local PostgreSQL and
# Redis, started (and installed, as root) by .ci/with-services. PYTEST_ARGS narrows the run.
test: lint
	cd frontend && npm test
	bash .ci/with-services $(PY) -m pytest $(PYTEST_ARGS)

check: install
	$(PY) manage.py makemigrations --check --dry-run
	DJANGO_SETTINGS_MODULE=vision_project.settings_production SECRET_KEY=$$($(PY) -c 'import secrets;print(secrets.token_urlsafe(64))') \
	ALLOWED_HOSTS=vision.example.org $(PY) manage.py check --deploy --fail-level WARNING
