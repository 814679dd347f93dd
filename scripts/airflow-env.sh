# shellcheck shell=bash
# The environment `make up` runs Airflow and the sandbox with. Source it to use the airflow CLI
# against the same instance:   source scripts/airflow-env.sh && airflow dags list
# Ports, executor and connections can be overridden by exporting them before sourcing; the homes
# are always under var/ of this checkout.

ERPSYNC_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ERPSYNC_REPO
export ERPSYNC_HOME="$ERPSYNC_REPO/var"
export ERPSYNC_RUN_DIR="$ERPSYNC_HOME/run"
export ERPSYNC_LOG_DIR="$ERPSYNC_HOME/log"

# ports of the local instance
export ERPSYNC_ERP_PORT="${ERPSYNC_ERP_PORT:-8101}"
export ERPSYNC_STOREFRONT_PORT="${ERPSYNC_STOREFRONT_PORT:-8102}"
export ERPSYNC_AIRFLOW_PORT="${ERPSYNC_AIRFLOW_PORT:-8080}"
export ERPSYNC_SMTP_PORT="${ERPSYNC_SMTP_PORT:-8125}"

# the venv first on PATH: Airflow starts its subprocesses as `airflow` from PATH
case ":$PATH:" in
  *":$ERPSYNC_REPO/.venv/bin:"*) ;;
  *) export PATH="$ERPSYNC_REPO/.venv/bin:$PATH" ;;
esac

# Airflow: SQLite + LocalExecutor under var/airflow, our dags/ and plugins/, no examples
export AIRFLOW_HOME="$ERPSYNC_HOME/airflow"
export AIRFLOW__CORE__DAGS_FOLDER="$ERPSYNC_REPO/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$ERPSYNC_REPO/plugins"
# `make up-celery` (ERPSYNC_CELERY=1): the same stack on the CeleryExecutor, as docker-compose.yaml
# runs it: the metadata DB and the state store on PostgreSQL (databases of their own), Redis as the
# broker (a DB number of its own), ERPSYNC_CELERY_WORKERS (2) `airflow celery worker` processes.
# The state store must be shared by every worker: SQLite is refused under Celery (docs/deployment.md).
if [ "${ERPSYNC_CELERY:-0}" = 1 ]; then
  ERPSYNC_PG_SERVER="${ERPSYNC_PG_SERVER:-postgres@127.0.0.1:5432}"
  export ERPSYNC_PG_SERVER
  export AIRFLOW__CORE__EXECUTOR=CeleryExecutor
  export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-postgresql+psycopg2://$ERPSYNC_PG_SERVER/erpsync_celery_airflow}"
  export AIRFLOW__CELERY__RESULT_BACKEND="${AIRFLOW__CELERY__RESULT_BACKEND:-db+postgresql://$ERPSYNC_PG_SERVER/erpsync_celery_airflow}"
  export AIRFLOW__CELERY__BROKER_URL="${AIRFLOW__CELERY__BROKER_URL:-redis://127.0.0.1:6379/12}"
  # task slots per worker (each is a forked process): 2 workers x 2 on a laptop
  export AIRFLOW__CELERY__WORKER_CONCURRENCY="${AIRFLOW__CELERY__WORKER_CONCURRENCY:-2}"
  export ERPSYNC_CELERY_WORKERS="${ERPSYNC_CELERY_WORKERS:-2}"
  # each worker reports its own name as a try's host (ERPSYNC_WORKER_NAME, set by up.sh)
  export AIRFLOW__CORE__HOSTNAME_CALLABLE=erpsync_airflow.worker.hostname
  export ERPSYNC_STATE_URL="${ERPSYNC_STATE_URL:-postgresql://$ERPSYNC_PG_SERVER/erpsync_celery_state}"
  export AIRFLOW_CONN_ERPSYNC_STATE="${AIRFLOW_CONN_ERPSYNC_STATE:-{\"conn_type\":\"erpsync_state\",\"host\":\"$ERPSYNC_STATE_URL\"\}}"
fi
export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
# a laptop, not a cluster: a few task slots (the LocalExecutor starts one process per slot)
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__CORE__AUTH_MANAGER=airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
export AIRFLOW__API__PORT="$ERPSYNC_AIRFLOW_PORT"
export AIRFLOW__API__BASE_URL="http://127.0.0.1:$ERPSYNC_AIRFLOW_PORT"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$ERPSYNC_AIRFLOW_PORT/execution/"

# Connections to the sandbox (JSON form); the hooks in plugins/erpsync_airflow read them. The
# extras carry each system's rate budget (requests per second shared by every task, and the
# tasks at once = the slots of its Airflow pool; `erpsync pools sync` sizes the pools from them)
if [ -z "${AIRFLOW_CONN_ERP_DEFAULT:-}" ]; then
  export AIRFLOW_CONN_ERP_DEFAULT='{"conn_type":"erpsync_erp","host":"127.0.0.1","port":'"$ERPSYNC_ERP_PORT"',"login":"erpsync","password":"erpsync-sandbox","extra":{"adapter":"sandbox","rps":100,"concurrency":4,"sale_warehouse":"MAIN","sale_warehouses_by_location":{"MAIN":"MAIN","EAST":"EAST","WEST":"WEST"}}}'
fi
if [ -z "${AIRFLOW_CONN_STOREFRONT_DEFAULT:-}" ]; then
  export AIRFLOW_CONN_STOREFRONT_DEFAULT='{"conn_type":"erpsync_storefront","host":"127.0.0.1","port":'"$ERPSYNC_STOREFRONT_PORT"',"password":"sandbox-token","extra":{"adapter":"sandbox","rps":100,"concurrency":4}}'
fi

# Alert e-mails (failures, missed deadlines, the watchdog, held prices, breaker): the SMTP
# connection points at the local mail sink `make up` starts (mails land in var/mail/new/); export
# AIRFLOW_CONN_SMTP_DEFAULT before sourcing to use a real relay. The sender comes from
# [email] from_email (the provider ignores the connection's from_email in places, #69262).
if [ -z "${AIRFLOW_CONN_SMTP_DEFAULT:-}" ]; then
  export AIRFLOW_CONN_SMTP_DEFAULT='{"conn_type":"smtp","host":"127.0.0.1","port":'"$ERPSYNC_SMTP_PORT"',"extra":{"disable_ssl":true,"disable_tls":true,"from_email":"erpsync@localhost"}}'
fi
export AIRFLOW__EMAIL__FROM_EMAIL="${AIRFLOW__EMAIL__FROM_EMAIL:-erpsync@localhost}"
export ERPSYNC_ALERT_EMAILS="${ERPSYNC_ALERT_EMAILS:-ops@localhost}"
