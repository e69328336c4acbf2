"""Shared fixtures: an isolated asset cache for fast tests (slow tests use the real default cache)."""

from __future__ import annotations

import os

# There is no Hub here, and tests must never depend on it: fail Hub lookups at once instead of after
# ~24 s of retries. Set before transformers/huggingface_hub are imported by the test modules.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# Under pytest-xdist (`make test` runs two workers on two cores) each worker keeps to one torch thread, so the
# workers do not fight over the cores; recipe subprocesses of a test inherit it.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

from pathlib import Path

import pytest


@pytest.fixture
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point NLPTRANSFER_CACHE at an empty folder for this test."""
    cache = tmp_path / "nlpcache"
    monkeypatch.setenv("NLPTRANSFER_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """The tiny BERT of `tiny.tiny_model_dir`, saved like a pretrained checkpoint (one per test module)."""
    from tiny import tiny_model_dir

    return tiny_model_dir(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def run_dir(model_dir, tmp_path_factory):
    """A run's output directory: a tiny negative/positive classifier, safetensors weights and tokenizer."""
    from transformers import AutoTokenizer

    from nlptransfer import ModelArguments, TransferArguments
    from nlptransfer.modeling import build_classifier, save_classifier

    out = tmp_path_factory.mktemp("run") / "run"
    model = build_classifier(ModelArguments(str(model_dir)), TransferArguments(), ["negative", "positive"])
    save_classifier(model, AutoTokenizer.from_pretrained(model_dir), out)
    return out
