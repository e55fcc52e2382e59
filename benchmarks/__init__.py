"""Benchmarks: ``python -m benchmarks`` runs every workload and prints one JSON object.

``python -m benchmarks hello_cities --n 200 --runs 3 --sync full`` runs one; ``--quick`` runs all at
tiny sizes (the test suite does, so this code cannot rot). ``python -m benchmarks.replay`` and
``python -m benchmarks.plans`` (EXPLAIN QUERY PLAN of the hub's hot statements) stand alone.
"""
