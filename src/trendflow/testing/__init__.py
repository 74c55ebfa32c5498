"""Helpers for tests, benchmarks and demos (generated media); never imported by the product."""
