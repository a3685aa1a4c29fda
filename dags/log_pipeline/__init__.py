"""Support code of the log_generation_pipeline DAG (dags/log_producer.py).

The DAG folder is on Airflow's import path, so the DAG imports this package directly; `.airflowignore`
keeps the DAG processor from scanning it for DAGs.
"""
