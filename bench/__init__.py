"""Benchmark of goldsignals: compute floor, embedded stack, Airflow, growth.

``python -m bench.run`` (``make bench``) measures the same work three ways on
the real gold history: the domain functions in one plain Python process (the
floor), the three ZenML pipelines on the embedded stack, and the DAGs in a
real Airflow. It prints the tables and writes them as JSON under
``$GOLDSIGNALS_HOME/bench/``.
"""
