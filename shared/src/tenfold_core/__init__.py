"""Tenfold shared core."""
