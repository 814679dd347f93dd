"""erpsync core: plain Python, never imports Airflow."""

__version__ = "0.1.0"
