"""Tests of the ``rxresilience.breaker`` package, one file per module."""
