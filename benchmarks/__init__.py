"""Throughput benchmarks: `python -m benchmarks [--quick] [--json FILE] [--plot FILE.png]`."""
