"""Tests of ``rxr.hedge``, one file per module: the policy, the operator, the run."""
