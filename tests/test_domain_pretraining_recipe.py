"""The domain-pretraining recipe on a tiny BERT (no MLM head, like MiniLM) and a tiny domain corpus."""

from __future__ import annotations

import json

import pytest
import torch
from tiny import DOMAIN, previous_run, tiny_domain_model_dir
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

from nlptransfer.errors import run_cli
from nlptransfer.recipes import domain_pretraining as dp
from nlptransfer.recipes import text_classification as tc


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_domain_model_dir(tmp_path_factory.mktemp("models"))


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "domain.txt"
    path.write_text("\n".join(DOMAIN * 4) + "\n", encoding="utf-8")
    return path


def _argv(model_dir, corpus, out, *extra):
    return [
        "--model_name_or_path",
        str(model_dir),
        "--corpus",
        str(corpus),
        "--output_dir",
        str(out),
        "--max_steps",
        "60",
        "--per_device_train_batch_size",
        "8",
        "--learning_rate",
        "5e-3",
        "--max_length",
        "32",
        "--packing",  # one example per text (packing: tests/test_head_warmup_tapt.py)
        "false",
        "--use_cpu",
        "true",
        "--logging_steps",
        "20",
        "--warmup_steps",
        "0",
        "--mlm_probability",
        "0.3",
        *extra,
    ]


def test_dapt_with_vocab_extension_lowers_mlm_loss_and_feeds_classification(
    model_dir, corpus, tmp_path, caplog
):
    out = tmp_path / "dapt"
    with caplog.at_level("WARNING", logger="nlptransfer"):
        metrics = dp.main(
            _argv(
                model_dir,
                corpus,
                out,
                "--extend_vocab",
                "2",
                "--min_count",
                "3",
                "--reference_corpus",
                "none",
            )
        )
    assert "no masked-LM head" in caplog.text and metrics["new_mlm_head"]
    assert metrics["mode"] == "dapt" and metrics["vocab_extension"] == 2
    assert metrics["mlm_loss_after"] < 0.7 * metrics["mlm_loss_before"]
    assert metrics["fertility"]["fertility"] < metrics["fertility_base_tokenizer"]["fertility"]
    ext = json.loads((out / "vocab_extension.json").read_text())
    assert ext["words"][0] == "hepatocellular" and len(ext["words"]) == 2
    assert ext["old_pieces"]["hepatocellular"] == ["he", "##pa", "##to", "##cellular"]
    assert "no masked-LM head" in (out / "README.md").read_text()
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.tokenize("hepatocellular carcinoma")[0] == "hepatocellular"
    mlm = AutoModelForMaskedLM.from_pretrained(out)
    assert mlm.get_input_embeddings().num_embeddings == len(tok)
    clf = AutoModelForSequenceClassification.from_pretrained(out, num_labels=2)  # pooler carried over
    base = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    torch.testing.assert_close(clf.bert.pooler.dense.weight, base.bert.pooler.dense.weight)
    # the classification recipe accepts the output as its model
    rows = [{"text": t, "label": "liver" if "hepato" in t else "other"} for t in DOMAIN * 3]
    data = tmp_path / "task.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = tc.main(
        [
            "--model_name_or_path",
            str(out),
            "--dataset",
            str(data),
            "--output_dir",
            str(tmp_path / "clf"),
            "--num_train_epochs",
            "1",
            "--use_cpu",
            "true",
            "--max_length",
            "32",
            "--eval_strategy",
            "no",
            "--save_strategy",
            "no",
            "--load_best_model_at_end",
            "false",
        ]
    )
    assert "f1_macro" in result["test"]


def test_tapt_uses_train_split_only_with_lora(model_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(model_dir.parent)  # the model given as a relative path (issue 15: the adapter's base)
    rows = [{"text": f"{t} number {i}", "label": "a" if i % 2 else "b"} for i, t in enumerate(DOMAIN * 3)]
    data = tmp_path / "task.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "tapt"
    metrics = dp.main(
        _argv(
            model_dir.name,
            data,
            out,
            "--strategy",
            "lora",
            "--lora_r",
            "4",
            "--max_steps",
            "30",
            "--new_words",
            str(_words(tmp_path)),
        )
    )
    assert metrics["mode"] == "tapt"
    assert metrics["train_texts"] + metrics["heldout_texts"] < len(rows)  # the test split is not read
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(model_dir.resolve())  # loads from any directory
    assert metrics["mlm_loss_after"] < metrics["mlm_loss_before"]
    tok = AutoTokenizer.from_pretrained(out)
    assert AutoModelForMaskedLM.from_pretrained(out).get_input_embeddings().num_embeddings == len(tok)


def _words(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("lymphoma\nmelanoma\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("setup", "extra", "message"),
    [
        ("empty", [], "is empty"),
        ("binary", [], "not valid UTF-8"),
        ("ok", ["--extend_vocab", "40", "--reference_corpus", "none"], "only 3 candidates pass"),
        ("ok", ["--strategy", "ia3"], "supports --strategy full or lora"),
        ("ok", ["--new_words", "missing.txt"], "not found"),
    ],
    ids=["empty-corpus", "not-text", "vocab-too-large", "strategy", "words-file"],
)
def test_bad_inputs_one_line_exit_2(model_dir, tmp_path, capsys, setup, extra, message):
    corpus = tmp_path / "c.txt"
    if setup == "empty":
        corpus.write_text("", encoding="utf-8")
    elif setup == "binary":
        corpus.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00binary")
    else:
        corpus.write_text("\n".join(DOMAIN) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        run_cli(dp.main, _argv(model_dir, corpus, out, *extra))
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert exc.value.code == 2 and len(errors) == 1 and message in errors[0]
    assert not out.exists()  # nothing written


def test_continuing_a_previous_run_in_its_own_output_dir_is_refused(model_dir, corpus, tmp_path, capsys):
    """`--model_name_or_path outputs/dapt --output_dir outputs/dapt --overwrite_output_dir` removed the
    model the run had just loaded (it reloads it to save the pooler, which was then silently dropped)."""
    out = tmp_path / "dapt"
    files = previous_run(out, model_dir)
    argv = _argv(out, corpus, out, "--overwrite_output_dir", "true")
    with pytest.raises(SystemExit) as exc:
        run_cli(dp.main, argv)
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert exc.value.code == 2 and len(errors) == 1
    assert "--model_name_or_path" in errors[0] and "is --output_dir" in errors[0]
    assert all(f.is_file() for f in files)  # the input model is kept


def test_new_words_file_under_home(tmp_path, monkeypatch):
    """`new_words: ~/words.txt` in a YAML config (no shell to expand it) was "not found"."""
    from nlptransfer.embeddings import read_word_list
    from nlptransfer.errors import ConfigError

    monkeypatch.setenv("HOME", str(tmp_path))
    _words(tmp_path)
    assert read_word_list("~/words.txt") == ["lymphoma", "melanoma"]
    with pytest.raises(ConfigError, match="cannot expand ~nlptransfer-no-such-user: no such user"):
        read_word_list("~nlptransfer-no-such-user/words.txt")
