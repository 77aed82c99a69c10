"""Airflow side: the DAG generator ZenML zips into every compiled DAG."""
