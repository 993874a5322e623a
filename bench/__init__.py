"""Benchmarks: each module measures tillflow next to a baseline in the same run and prints both."""
