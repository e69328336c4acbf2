"""Tiny models, tokenizers and data built in the tests: no downloads, seconds to train."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    BertConfig,
    BertModel,
    BertTokenizerFast,
    MarianConfig,
    MarianMTModel,
    PreTrainedTokenizerFast,
)

WORDS = (
    "good great fine love wonderful best fun nice bad awful worst hate boring poor dull terrible "
    "movie film plot actor scene story the a is was it this and but very not"
).split()
POSITIVE = WORDS[:8]
NEGATIVE = WORDS[8:16]


def tiny_config(vocab_size: int, **kwargs) -> BertConfig:
    """The tiny BERT's config: 2 layers, 32 wide."""
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        **kwargs,
    )


def tiny_model_dir(root: Path, seed: int = 0, positions: int = 128) -> Path:
    """A 2-layer, 32-wide BERT with a word-level vocabulary, saved like a pretrained checkpoint.

    It takes `positions` tokens, so the recipes' default --max_length 128 fits (a longer one is refused).
    The first 64 position rows and every other weight are those of the 64-position model of the same seed
    (the golden metrics of tests/test_behaviour.py use `positions=64`); rows 64.. repeat them."""
    path = Path(root) / "tiny-bert"
    if (path / "config.json").exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(str(path / "vocab.txt"))
    config = tiny_config(len(vocab))
    torch.manual_seed(seed)
    model = BertModel(config)
    if positions > config.max_position_embeddings:
        table = model.embeddings.position_embeddings.weight.data
        rows = table.repeat((positions + len(table) - 1) // len(table), 1)[:positions]
        model.embeddings.position_embeddings = torch.nn.Embedding.from_pretrained(rows.clone(), freeze=False)
        model.config.max_position_embeddings = positions
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def sentiment_rows(n: int, seed: int = 0, neutral: bool = True) -> list[dict]:
    """Short synthetic reviews whose label follows their sentiment words."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = ["negative", "neutral", "positive"][i % 3] if neutral else ["negative", "positive"][i % 2]
        words = rng.sample(WORDS[16:], rng.randint(2, 8))
        if label == "positive":
            words += rng.sample(POSITIVE, 2)
        elif label == "negative":
            words += rng.sample(NEGATIVE, 2)
        rng.shuffle(words)
        rows.append({"review": " ".join(words), "sentiment": label})
    return rows


def write_csv(path: Path, rows: list[dict]) -> Path:
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def review_argv(model_dir, data_csv, out, *extra: str) -> list[str]:
    """A recipe's flags for two steps on the tiny model and a `sentiment_rows` csv (review/sentiment columns),
    no other test sets, on CPU; `extra` flags come last (they win)."""
    flags = {
        "model_name_or_path": model_dir,
        "dataset": data_csv,
        "eval_datasets": "none",
        "text_column": "review",
        "label_column": "sentiment",
        "output_dir": out,
        "max_steps": 2,
        "per_device_train_batch_size": 8,
        "logging_steps": 1,
        "use_cpu": "true",
    }
    return [item for key, value in flags.items() for item in (f"--{key}", str(value))] + list(extra)


# A tiny 'biomedical' domain: a WordPiece vocabulary that fragments its words, and general text.
GENERAL = "the a of and was were with in patients study good movie great film bad actor".split()
PIECES = "he ##pa ##to ##cellular car ##cino ##ma cho ##lang ##io ##ly non ##he mel ##ano l ##ym ##ph ##oma".split()
DOMAIN = [
    "the patients with hepatocellular carcinoma were treated",
    "hepatocellular carcinoma and cholangiocarcinoma in patients",
    "the study of lymphoma and melanoma was good",
    "patients with hepatocellular carcinoma and lymphoma",
] * 5
REFERENCE = ["the movie was great", "a bad film with a good actor", "the actor and the film"] * 5


def tiny_wordpiece(root: Path) -> Path:
    """A WordPiece tokenizer (saved in `root`) whose vocabulary cuts the domain words into pieces."""
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    letters = list("abcdefghijklmnopqrstuvwxyz") + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + GENERAL + PIECES + letters
    (path / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    BertTokenizerFast(str(path / "vocab.txt")).save_pretrained(path)
    return path


def tiny_domain_model_dir(root: Path, seed: int = 0) -> Path:
    """A tiny BERT encoder (no MLM head, like the embedded MiniLM) with `tiny_wordpiece`'s vocabulary."""
    path = tiny_wordpiece(Path(root) / "tiny-domain-bert")
    if (path / "config.json").exists():
        return path
    tokenizer = BertTokenizerFast.from_pretrained(path)
    torch.manual_seed(seed)
    BertModel(tiny_config(len(tokenizer))).save_pretrained(path)
    return path


# A tiny translation task: toy languages that spell English words backwards.
EN = "the a man woman king house bread water light day night good great old new said went came saw gave".split()


def toy_pairs(n: int, lang: str, seed: int = 0) -> list[dict]:
    """Sentences of a toy language (`rev`: words reversed; `reva`: reversed + 'a', a related language)
    paired with the English words they encode."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        words = rng.choices(EN, k=rng.randint(2, 6))
        src = [w[::-1] + ("a" if lang == "reva" else "") for w in words]
        rows.append({"source": " ".join(src), "target": " ".join(words)})
    return rows


def write_tsv(path: Path, rows: list[dict]) -> Path:
    """Parallel pairs as a source/target .tsv file."""
    path = Path(path)
    lines = ["source\ttarget"] + [f"{r['source']}\t{r['target']}" for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def toy_word_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over English and both toy languages, `</s>` appended; no training, so the
    same ids on every machine."""
    words = EN + [w[::-1] for w in EN] + [w[::-1] + "a" for w in EN]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(["<pad>", "</s>", "<unk>", *words]))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512
    )


def tiny_marian_dir(root: Path, seed: int = 0) -> Path:
    """A 1-layer, 16-wide Marian (the opus-mt architecture) over `toy_word_tokenizer`, saved like a
    pretrained translation checkpoint."""
    path = Path(root) / "tiny-marian"
    if (path / "config.json").exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    tok = toy_word_tokenizer()
    config = MarianConfig(
        vocab_size=len(tok),
        decoder_vocab_size=len(tok),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        activation_function="swish",
        scale_embedding=True,
        share_encoder_decoder_embeddings=True,
        tie_word_embeddings=True,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.pad_token_id,
        forced_eos_token_id=tok.eos_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    MarianMTModel(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def write_vectors(path: Path, dim: int = 8, words=WORDS, header: bool = False, seed: int = 0) -> Path:
    """A GloVe/word2vec text vectors file over `words`: dimension 0 carries the sentiment (+1 for
    POSITIVE, -1 for NEGATIVE, 0 otherwise), the other dimensions small seeded noise."""
    rng = random.Random(seed)
    lines = [f"{len(words)} {dim}"] if header else []
    for word in words:
        first = 1.0 if word in POSITIVE else -1.0 if word in NEGATIVE else 0.0
        values = [first] + [round(rng.gauss(0, 0.1), 4) for _ in range(dim - 1)]
        lines.append(" ".join([word, *(f"{v:g}" for v in values)]))
    path = Path(path)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cli_error(capsys, argv) -> str:
    """The one error line of `nlptransfer <argv>`: exit code 2, "error: ..." last on stderr, no traceback."""
    import pytest

    from nlptransfer import cli

    with pytest.raises(SystemExit) as info:
        cli.main([str(a) for a in argv])
    assert info.value.code == 2
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: ") and not any("Traceback" in x for x in lines), lines
    return lines[-1]


def previous_run(out: Path, model: Path, sub: str = "") -> list[Path]:
    """`out` as a finished run whose run.json lists a copy of the model folder `model` at `out/sub` (a
    previous run's saved model, its `teacher/`, `encoder/`...): `--overwrite_output_dir` removes such files.
    Returns the copied files."""
    import json
    import shutil
    import time

    shutil.copytree(model, Path(out) / sub, dirs_exist_ok=True)
    files = sorted(p for p in Path(out).rglob("*") if p.is_file())
    record = {
        "recipe": "test",
        "status": "complete",
        "started": time.time() - 60,
        "files": [p.relative_to(out).as_posix() for p in files],
    }
    (Path(out) / "run.json").write_text(json.dumps(record), encoding="utf-8")
    return files
