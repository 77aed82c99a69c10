"""The start-up helpers of long-lived ZenML processes."""

from __future__ import annotations

import importlib.metadata

import pytest

from goldsignals.startup import remember_package_index


def test_remember_package_index_reads_metadata_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []

    def reading() -> dict[str, list[str]]:
        calls.append(1)
        return {"pandas": ["pandas"]}

    monkeypatch.setattr(importlib.metadata, "packages_distributions", reading)

    remember_package_index()
    remember_package_index()
    answers = [importlib.metadata.packages_distributions() for _ in range(3)]

    assert len(calls) == 1
    assert all(answer == {"pandas": ["pandas"]} for answer in answers)
