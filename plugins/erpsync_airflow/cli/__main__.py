import sys

from erpsync_airflow.cli import main

sys.exit(main())
