"""Benchmarks of each stage of a round against the naive way and the hardware limit.

Run with ``python -m bench.run``; BENCHMARKS.md explains every row. Not part of the test run.
"""
