"""Tests of goldsignals."""
