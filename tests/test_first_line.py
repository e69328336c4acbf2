"""`nlptransfer.errors.first_line` is the one place an exception becomes the text of a one-line error: its
first line, its type name when the message is empty, at most 300 characters. The inline copies it replaced
raised IndexError on an empty message (pubmed, multitask LoRA, --peft_config) or let a huge first line
through (predict, the parallel-table reader)."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from nlptransfer.errors import ConfigError, DataError, ModelError, first_line

PACKAGE = Path(__file__).resolve().parent.parent / "nlptransfer"
LONG = "word " * 400 + "\nthe second line"  # a first line of 2000 characters


def test_first_line_is_the_first_line_or_the_type_name_capped():
    assert first_line(ValueError("bad value\nmore detail")) == "bad value"
    assert first_line(EOFError()) == "EOFError"
    assert first_line(OSError("  \n  ")) == "OSError"
    assert first_line(ValueError(LONG)) == LONG[:300]


INLINE = re.compile(r"splitlines\(\)\[0\]|def _first_line\b")


def test_no_module_spells_out_its_own_first_line():
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{n}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "errors.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if INLINE.search(line)
    ]
    assert not found, "use nlptransfer.errors.first_line: " + ", ".join(found)


def test_pubmed_error_without_a_message_names_its_type(tmp_path, monkeypatch):
    from nlptransfer.data import pubmed

    def truncated(*args, **kwargs):
        raise EOFError()  # str() is "": the inline copy raised IndexError

    monkeypatch.setattr(pubmed.ET, "iterparse", truncated)
    path = tmp_path / "x.xml"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"not readable MEDLINE XML \(EOFError\).*fetch pubmed --force"):
        pubmed.parse_files([path])


def test_peft_config_error_without_a_message_names_its_type(tmp_path, monkeypatch):
    from peft import TaskType

    from nlptransfer.modeling import adapters

    def refuse(data):
        raise TypeError()

    monkeypatch.setattr(adapters, "get_peft_config", refuse)
    path = tmp_path / "peft.yaml"
    path.write_text("peft_type: LORA\nr: 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"invalid LORA config \(TypeError\)"):
        adapters.peft_config_from_file(str(path), TaskType.SEQ_CLS)


def test_multitask_lora_error_without_a_message_names_its_type(monkeypatch):
    import peft
    import torch

    from nlptransfer.modeling.multitask import adapt_encoder

    def refuse(model, config):
        raise ValueError()

    monkeypatch.setattr(peft, "get_peft_model", refuse)
    model = SimpleNamespace(encoder=torch.nn.Linear(2, 2))
    with pytest.raises(ModelError, match=r"LoRA cannot be applied to the encoder: ValueError$"):
        adapt_encoder(model, "lora", target_modules=["query"])


def test_predict_unreadable_table_error_is_capped(tmp_path, monkeypatch):
    import datasets

    from nlptransfer.cli.predict import read_texts

    def broken(*args, **kwargs):
        raise ValueError(LONG)

    monkeypatch.setattr(datasets, "load_dataset", broken)
    path = tmp_path / "texts.csv"
    path.write_text("text\ngood film\n", encoding="utf-8")
    with pytest.raises(DataError, match="could not read .* as .csv: word word") as info:
        read_texts(str(path), "text")
    message = str(info.value)
    assert "\n" not in message and "second line" not in message
    assert message.count("word") == len(LONG[:300].split()) and "check that it is valid .csv" in message


def test_parallel_table_error_is_capped(tmp_path, monkeypatch):
    from nlptransfer.data import bible

    def broken(*args, **kwargs):
        raise ValueError(LONG)

    monkeypatch.setattr(bible.Dataset, "from_json", staticmethod(broken))
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"source": "a", "target": "b"}\n', encoding="utf-8")
    with pytest.raises(DataError, match="could not be read as jsonl: word word") as info:
        bible.load_parallel(str(path), "de", "en")
    message = str(info.value)
    assert "\n" not in message and message.count("word") == len(LONG[:300].split())
