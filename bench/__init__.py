"""Benchmarks (`make bench`): each bench_*.py module prints figures and ratios against a
reference measured in the same run. Timings are never asserted in tests: machines are shared."""
