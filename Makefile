# erpsync: the two commands of the README, and a few more.
.PHONY: up up-celery down test sandbox lint bench

up:        ## install, start the sandbox and Airflow on embedded defaults, print the UI URL and login
	scripts/up.sh

up-celery: ## the same stack on the CeleryExecutor: PostgreSQL metadata DB + state store, Redis broker, 2 workers
	ERPSYNC_CELERY=1 scripts/up.sh

down:      ## stop what `make up` or `make up-celery` started
	scripts/down.sh

test:      ## ruff + all tests (unit, DAG integrity, integration against sandbox and PostgreSQL)
	scripts/test.sh

sandbox:   ## run only the sandbox ERP (8101) and storefront (8102) in the foreground
	scripts/bootstrap.sh && .venv/bin/python -m erpsync.sandbox --erp-port 8101 --storefront-port 8102

lint:
	scripts/bootstrap.sh && .venv/bin/ruff check .

bench:     ## run the benchmarks and print their tables
	scripts/bootstrap.sh && .venv/bin/python -m benchmarks
