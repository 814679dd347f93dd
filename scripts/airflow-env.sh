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
