"""Tests of the ``rxresilience.idempotency`` package, one file per module."""
