"""Benchmarks: ``python -m benchmarks.<name>`` prints one JSON object of figures (DESIGN §10)."""
