"""Shared fixtures: an isolated asset cache for fast tests (slow tests use the real default cache)."""

from __future__ import annotations

import os

# There is no Hub here, and tests must never depend on it: fail Hub lookups at once instead of after
# ~24 s of retries. Set before transformers/huggingface_hub are imported by the test modules.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from pathlib import Path

import pytest


@pytest.fixture
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point NLPTRANSFER_CACHE at an empty folder for this test."""
    cache = tmp_path / "nlpcache"
    monkeypatch.setenv("NLPTRANSFER_CACHE", str(cache))
    return cache
