"""Benchmarks: golgi against hand-written numpy and PyTorch (see README.md here)."""
