"""Plumbing every stage shares: atomic writes, progress, BLAS threads, paths, hashing, Ctrl-C."""
