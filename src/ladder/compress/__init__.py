"""Compression of trained models into variant artifacts (`ladder compress RUN_DIR`)."""
