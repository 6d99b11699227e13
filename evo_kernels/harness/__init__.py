"""Judging candidates on one device: policy, sandbox, verification, timing, audit, backends."""
