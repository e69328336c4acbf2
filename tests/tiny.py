"""Tiny models, tokenizers and data built in the tests: no downloads, seconds to train."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

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


def tiny_model_dir(root: Path, seed: int = 0) -> Path:
    """A 2-layer, 32-wide BERT with a word-level vocabulary, saved like a pretrained checkpoint."""
    path = Path(root) / "tiny-bert"
    if (path / "config.json").exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(str(path / "vocab.txt"))
    config = tiny_config(len(vocab))
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(path)
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
