# The project's interface; `make help` prints the lines below. Each target installs what it needs
# (once; offline afterwards). Every command in the list runs as written: an optional variable is
# shown in a second command, or in words.
#   make local                                      the dev stage end to end on the local platform (.local/), bank marketing
#   make local DATASET=car-evaluation               the same with another dataset that has a spec in datasets/;
#                                                   DATA=FILE uploads another raw file, SPEC=FILE DATA=FILE runs your own dataset
#   make synth                                      synthesize every stack of the dev stage into cdk.out/ and check it
#   make synth STAGE=prod ACCOUNT=123456789012      the same for another stage (one whose file names no account needs ACCOUNT)
#   make test                                       the whole test suite
#   make permissions                                the permission proof over the dev and prod assemblies
#   make cost                                       each stage's idle monthly cost on paper, written to docs/cost.md
#   make bench                                      benchmarks: synth, ETL, training, model quality, handler imports, serving, the local platform
#   make mutation                                   mutation testing of the decision code: killed and surviving mutants per module
#   make lint                                       ruff, and the type checker (make typecheck)
#   make typecheck                                  mypy over the infrastructure, and over the runtime as shipped
#   make format                                     ruff format, then ruff check --fix
#   make setup                                      only the set-up: .venv/ with the pinned Python packages, the pinned cdk CLI
#   make java                                       check that a Java runtime is installed (the local Spark needs one)
#   make bootstrap STAGE=prod ACCOUNT=123456789012  cdk bootstrap the stage's environment (needs AWS credentials)
#   make deploy STAGE=prod ACCOUNT=123456789012     cdk deploy --all (needs AWS credentials; without STAGE, the dev stage)
#   make diff STAGE=prod ACCOUNT=123456789012       cdk diff --all: what a deploy would change (needs AWS credentials)
#   make destroy STAGE=dev                          cdk destroy --all (needs AWS credentials)
#   make clean                                      remove what the targets generate: cdk.out/, .local/, the set-up stamps, caches
#   make help                                       this list

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
STAGE ?= dev
ACCOUNT ?=
REGION ?=
VENV := .venv
STAMPS := .make

# node_modules/.bin first: the pinned cdk CLI and, on Linux x64, a supported Node.js for jsii.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export CDK_DISABLE_VERSION_CHECK := 1
export PYTHONDONTWRITEBYTECODE := 1

CDK_CONTEXT := -c stage=$(STAGE) $(if $(ACCOUNT),-c account=$(ACCOUNT)) $(if $(REGION),-c region=$(REGION))

# make local: the dev stage's assembly, with the chosen dataset served and a user's spec added.
LOCAL := .local
DATASET ?=
SPEC ?=
DATA ?=
LOCAL_CONTEXT := -c stage=dev $(if $(DATASET),-c serve=$(DATASET)) $(if $(SPEC),-c extra_specs=$(abspath $(SPEC)))
LOCAL_ARGS := $(if $(DATASET),--dataset $(DATASET)) $(if $(SPEC),--spec $(abspath $(SPEC))) $(if $(DATA),--data $(abspath $(DATA)))

.PHONY: help setup java local synth permissions cost test bench mutation lint typecheck format bootstrap deploy diff destroy clean

help:
	@sed -n 's/^#   //p' $(MAKEFILE_LIST)

$(STAMPS)/python: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -r requirements-dev.txt
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/node: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js 20 or newer (it brings npm)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@mkdir -p $(STAMPS) && touch $@

setup: $(STAMPS)/python $(STAMPS)/node

local: setup java
	rm -rf $(LOCAL)/cdk.out $(LOCAL)/report.json $(LOCAL)/trace.json
	cdk synth --quiet -o $(LOCAL)/cdk.out $(LOCAL_CONTEXT)
	python -m checks $(LOCAL)/cdk.out
	python -m local --assembly $(LOCAL)/cdk.out --state $(LOCAL) $(LOCAL_ARGS)

synth: setup
	rm -rf cdk.out
	cdk synth --quiet $(CDK_CONTEXT)
	python -m checks cdk.out

test: setup java
	python -m pytest

# Each stage's assembly run on the twin; every request evaluated against its policies (exit 1 on a failure).
PERMISSIONS := .permissions
permissions: setup java
	rm -rf $(PERMISSIONS)
	cdk synth --quiet -o $(PERMISSIONS)/dev -c stage=dev
	cdk synth --quiet -o $(PERMISSIONS)/prod -c stage=prod -c account=123456789012
	python -m permissions --assembly $(PERMISSIONS)/dev --assembly $(PERMISSIONS)/prod --state $(PERMISSIONS)/twins

# Each stage's idle monthly cost from fresh dev and prod assemblies (docs/cost.md; a test keeps it current).
COST := .cost
cost: setup
	rm -rf $(COST)
	cdk synth --quiet -o $(COST)/dev -c stage=dev
	cdk synth --quiet -o $(COST)/prod -c stage=prod -c account=123456789012
	python -m checks.cost $(COST)/dev $(COST)/prod --output docs/cost.md

# The local Spark session of the ETL tests needs a Java runtime (Glue 5 runs Java 17).
java:
	@command -v java >/dev/null || { echo "Java not found: the ETL tests run Spark locally; install a JRE 17 (Debian/Ubuntu: apt-get install openjdk-17-jre-headless; macOS: brew install openjdk@17)"; exit 1; }

bench: setup java
	python bench/synth.py --stage $(STAGE)$(if $(ACCOUNT), --account $(ACCOUNT)) --runs 3
	python bench/prepare.py --runs 3
	python bench/train.py --runs 3
	python bench/quality.py
	python bench/handlers.py
	python bench/serve.py
	python bench/local.py

# Not part of make test (checks/mutation.py): 1 to 9 minutes a module, two modules at a time on 2
# cores; the whole run's time is in its last line.
mutation: setup
	python -m checks.mutation

lint: setup typecheck
	ruff check .
	ruff format --check .

# Two kinds of code, checked apart. The infrastructure is one tree of packages. The runtime is
# checked as it ships: each function's folder with etl/ beside it (its asset holds
# platform_runtime.py and dataset_spec.py), and the Glue and training scripts, whose modules
# import each other by bare name.
typecheck: setup
	mypy app.py config stacks constructs checks
	MYPYPATH=etl:training_jobs mypy --no-explicit-package-bases etl/*.py training_jobs/*.py
	for handler in lambda/*/handler.py; do MYPYPATH=etl mypy --no-explicit-package-bases "$$handler"; done

format: setup
	ruff format .
	ruff check --fix .

bootstrap: setup
	cdk bootstrap $(CDK_CONTEXT)

deploy: setup
	cdk deploy --all $(CDK_CONTEXT)

diff: setup
	cdk diff --all $(CDK_CONTEXT)

destroy: setup
	cdk destroy --all $(CDK_CONTEXT)

clean:
	rm -rf cdk.out $(LOCAL) $(COST) $(PERMISSIONS) $(STAMPS) .pytest_cache .ruff_cache .mypy_cache
