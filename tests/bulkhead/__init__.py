"""Tests of the bulkhead: the shared object, its operator and its laws, one file per module."""
