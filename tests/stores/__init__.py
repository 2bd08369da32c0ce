"""Tests of the ``rxresilience.stores`` package: the contract every store keeps, then
each backend's own."""
