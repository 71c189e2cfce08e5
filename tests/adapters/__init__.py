"""Tests of the format adapters, one module per format."""
