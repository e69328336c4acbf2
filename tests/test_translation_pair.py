"""Translation-pair transfer: data, vocabulary extension, trainer options, metrics, the recipe end to end.

Tiny Marian and T5 models are built from configs with a locally trained tokenizer and saved to disk, so
the recipe loads them exactly like Hub checkpoints. Slow tests use the real `bible` asset.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from tiny import previous_run, toy_pairs, write_tsv
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, T5Config, T5ForConditionalGeneration

from nlptransfer.data import bible
from nlptransfer.embeddings import extend_subword_vocabulary
from nlptransfer.errors import ConfigError, DataError, ModelError, OutputDirError
from nlptransfer.modeling.seq2seq import (
    build_marian,
    load_seq2seq,
    train_tokenizer,
    translate,
    translation_scores,
)
from nlptransfer.recipes import translation_pair
from nlptransfer.translation.pairs import child_languages


def toy_tokenizer(vocab_size: int = 120):
    texts = [t for r in toy_pairs(300, "rev") + toy_pairs(300, "reva", 1) for t in r.values()]
    return train_tokenizer(texts, vocab_size)


@pytest.fixture(scope="module")
def tiny_marian_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny-marian")
    tok = toy_tokenizer()
    torch.manual_seed(0)
    build_marian(tok, d_model=16, layers=1, heads=2, ffn_dim=32, max_positions=64).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_t5_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny-t5")
    tok = toy_tokenizer()
    config = T5Config(
        vocab_size=len(tok),
        d_model=16,
        d_ff=32,
        d_kv=8,
        num_layers=1,
        num_heads=2,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def child_tsv(tmp_path_factory) -> Path:
    return write_tsv(tmp_path_factory.mktemp("child") / "pairs.tsv", toy_pairs(120, "reva", 2))


TINY = [
    "--max_steps",
    "3",
    "--per_device_train_batch_size",
    "8",
    "--per_device_eval_batch_size",
    "16",
    "--max_test_samples",
    "6",
    "--num_beams",
    "2",
    "--max_new_tokens",
    "12",
    "--logging_steps",
    "1",
    "--max_source_length",
    "32",
    "--max_target_length",
    "32",
]


# ------------------------------------------------------------------------------------------ data


def test_bible_names_map_to_public_domain_translations():
    assert bible.parse_bible_name("bible-es-en") == ("es", "en")
    assert bible.parse_bible_name("bible-en-web-fr") == ("en-web", "fr")
    assert {t.code for t in bible.LANGUAGES.values()} == set("k43lvdeurfyz")  # offline-assets.md's list
    with pytest.raises(DataError, match=r"unknown Bible language code 'xx'.*available.*en, en-web"):
        bible.parse_bible_name("bible-xx-en")
    with pytest.raises(DataError, match="both 'en'"):
        bible.parse_bible_name("bible-en-en")
    assert bible.clean_verse("a\u00ad b\t\n c\u200e ") == "a b c"


def test_a_local_file_named_like_a_bible_pair_gets_the_way_to_read_it(tmp_path, monkeypatch):
    """`--child_dataset bible-notes.tsv` (a file in the working directory) is read as an embedded pair name;
    the error says so and how to pass the file instead."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as err:
        bible.parse_bible_name("bible-notes.tsv")
    assert "./bible-notes.tsv" not in str(err.value)  # no such file: no hint
    (tmp_path / "bible-notes.tsv").write_text("source\ttarget\nhola\thello\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        bible.parse_bible_name("bible-notes.tsv")
    assert "names an embedded pair" in str(err.value) and "pass it as ./bible-notes.tsv" in str(err.value)


def test_classification_loader_points_bible_names_to_the_translation_recipe():
    from nlptransfer.data import load_source

    with pytest.raises(DataError, match="parallel.*translation_pair --child_dataset bible-es-en"):
        load_source("bible-es-en")


def test_local_parallel_files(tmp_path):
    rows = toy_pairs(40, "rev")
    ds = bible.load_parallel(str(write_tsv(tmp_path / "p.tsv", rows)), "xx", "en")
    assert sum(len(s) for s in ds.values()) == 40 and ds["train"].column_names == ["source", "target"]
    # columns named by the language codes, jsonl
    (tmp_path / "p.jsonl").write_text(
        "".join(json.dumps({"de": r["source"], "en": r["target"]}) + "\n" for r in rows)
    )
    assert len(bible.load_parallel(str(tmp_path / "p.jsonl"), "de", "en")["test"]) == 4
    # two aligned text files by prefix
    (tmp_path / "c.de").write_text("\n".join(r["source"] for r in rows) + "\n", encoding="utf-8")
    (tmp_path / "c.en").write_text("\n".join(r["target"] for r in rows) + "\n", encoding="utf-8")
    ds = bible.load_parallel(str(tmp_path / "c"), "de", "en")
    assert sorted(s for split in ds.values() for s in split["source"]) == sorted(r["source"] for r in rows)


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        (
            lambda d: (d / "c.de").write_text("a\nb\n") and (d / "c.en").write_text("x\n"),
            "2 lines but.*has 1",
        ),
        (lambda d: (d / "c.de").write_text("a\nb\n"), "c.en' is missing"),
        (lambda d: (d / "c.tsv").write_text("source\tother\na\tb\n"), "no target side"),
        (lambda d: (d / "c.tsv").write_text("source\ttarget\na\t\n"), "pair 1 has an empty target side"),
    ],
    ids=["mismatched-lines", "missing-file", "missing-column", "empty-side"],
)
def test_bad_parallel_files(tmp_path, setup, match):
    setup(tmp_path)
    source = str(tmp_path / ("c.tsv" if (tmp_path / "c.tsv").exists() else "c"))
    with pytest.raises(DataError, match=match) as err:
        bible.load_parallel(source, "de", "en")
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------ model utilities


def test_bleu_and_chrf_match_sacrebleu():
    import sacrebleu

    preds, refs = ["the king went home", "bread and water"], ["the king went to his house", "bread and water"]
    scores = translation_scores(preds, refs)
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(preds, [refs]).score)
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(preds, [refs]).score)
    assert translation_scores(refs, refs)["bleu"] == pytest.approx(100.0)


def test_extend_subword_vocabulary_initialises_new_rows_from_their_pieces(tiny_marian_dir, tmp_path):
    model, tok = load_seq2seq(str(tiny_marian_dir))
    old = model.get_input_embeddings().weight.detach().clone()
    pieces = tok("zzqx", add_special_tokens=False)["input_ids"]
    assert len(pieces) > 1  # the parent spells the unseen word out in pieces
    model.final_logits_bias[0, pieces] = 1.0
    known = next(t for t in tok.get_vocab() if t.startswith("▁") and len(t) > 2)
    grown, added = extend_subword_vocabulary(model, tok, {"▁zzqx": -3.0, known: -1.0})
    assert added == ["▁zzqx"]  # known pieces are not added twice
    row = grown.convert_tokens_to_ids("▁zzqx")
    assert row == old.shape[0] and len(grown) == model.get_input_embeddings().weight.shape[0] == row + 1
    assert torch.allclose(model.get_input_embeddings().weight[row], old[pieces].mean(0))
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert model.final_logits_bias.shape[-1] == len(grown) and model.final_logits_bias[0, row] == 1.0
    # a real subword: the new word is one piece now, everything else segments as before
    assert grown("zzqx", add_special_tokens=False)["input_ids"] == [row]
    assert grown("the king")["input_ids"] == tok("the king")["input_ids"]
    grown.save_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path)("zzqx doog")["input_ids"][0] == row
    # generation runs with the grown vocabulary (what an untrained model writes is arbitrary)
    translate(model, grown, ["zzqx namow"], num_beams=2, max_new_tokens=5)


def test_trainer_freezes_a_side_and_trains_embeddings_first(tiny_marian_dir, tmp_path):
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainingArguments, TrainerCallback

    from nlptransfer import TranslationTransferTrainer
    from nlptransfer.modeling.seq2seq import tokenize_pairs

    model, tok = load_seq2seq(str(tiny_marian_dir))
    data = tokenize_pairs(Dataset.from_list(toy_pairs(32, "rev")), tok, 32, 32)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    args = Seq2SeqTrainingArguments(
        str(tmp_path),
        max_steps=4,
        per_device_train_batch_size=8,
        learning_rate=1e-2,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = TranslationTransferTrainer(
        model=model,
        args=args,
        train_dataset=data,
        data_collator=DataCollatorForSeq2Seq(tok, model=model),
        freeze="encoder",
        embeddings_only_steps=2,
    )
    seen = []

    class Record(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kw):
            seen.append({n: p.detach().clone() for n, p in model.named_parameters()})

    trainer.add_callback(Record())
    trainer.train()
    changed = lambda a, b: {n for n in a if not torch.equal(a[n], b[n])}  # noqa: E731
    first = changed(before, seen[1])  # after 2 steps: only the (shared, tied) embeddings moved
    assert first == {"model.shared.weight"} or first <= {"model.shared.weight", "lm_head.weight"}
    last = changed(before, seen[-1])
    assert any(".decoder.layers." in n for n in last)  # everything allowed trains after the phase
    assert not any(".encoder.layers." in n for n in last)  # the frozen side never moved


# ------------------------------------------------------------------------------------ the recipe


def _run(tmp_path, *argv):
    out = tmp_path / "out"
    metrics = translation_pair.main([*TINY, *argv, "--output_dir", str(out)])  # argv overrides TINY
    return out, metrics


def test_recipe_with_a_marian_checkpoint_from_disk(tiny_marian_dir, child_tsv, tmp_path):
    out, metrics = _run(
        tmp_path,
        "--parent_model",
        str(tiny_marian_dir),
        "--child_dataset",
        str(child_tsv),
        "--child_train_size",
        "60",
    )
    assert set(metrics["results"]) == {"zero_shot", "scratch", "transfer"}
    assert metrics["training"]["transfer"]["train_pairs_used"] == 60
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and {"metrics.json", "README.md", "model.safetensors"} <= set(
        run["files"]
    )
    assert "pipeline_tag: translation" in (out / "README.md").read_text()
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and {"source", "reference", "scratch", "transfer", "zero_shot"} <= set(rows[0])
    for system, reported in metrics["results"].items():  # the scores are those of the written translations
        again = translation_scores([r[system] for r in rows], [r["reference"] for r in rows])
        assert (reported["bleu"], reported["chrf"]) == pytest.approx((again["bleu"], again["chrf"]))
    # the saved child is a plain transformers seq2seq model carrying the beam settings
    model, tok = AutoModelForSeq2SeqLM.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    assert model.generation_config.num_beams == 2 and model.generation_config.max_new_tokens == 12
    generated = model.generate(**tok(["doog gnik"], return_tensors="pt"))
    assert generated.shape[1] <= 13  # the saved max_new_tokens=12 (+ the decoder start token)


def test_recipe_with_a_t5_checkpoint_lora_and_vocab_extension(tiny_t5_dir, child_tsv, tmp_path):
    out, metrics = _run(
        tmp_path,
        "--parent_model",
        str(tiny_t5_dir),
        "--child_dataset",
        str(child_tsv),
        "--child_train_size",
        "60",
        "--strategy",
        "lora",
        "--target_modules",
        "q",
        "v",
        "--vocab",
        "extend",
        "--extend_vocab_size",
        "60",
        "--runs",
        "transfer",
        "--source_prefix",
        "translate: ",
    )
    assert set(metrics["results"]) == {"transfer"}
    t = metrics["training"]["transfer"]
    assert t["trainable_parameters"] < t["total_parameters"] / 2  # adapters only
    model = AutoModelForSeq2SeqLM.from_pretrained(out)  # merged: plain T5, no peft needed
    tok = AutoTokenizer.from_pretrained(out)
    assert (
        model.get_input_embeddings().weight.shape[0]
        >= len(tok)
        > len(AutoTokenizer.from_pretrained(tiny_t5_dir))
    )
    assert (out / "adapter" / "adapter_config.json").is_file()


def test_offline_parent_is_trained_once_and_cached(child_tsv, tmp_path, tmp_cache):
    parent = write_tsv(tmp_path / "parent.tsv", toy_pairs(200, "rev", 5))
    argv = [
        "--parent_dataset",
        str(parent),
        "--child_dataset",
        str(child_tsv),
        "--child_train_size",
        "60",
        "--vocab_size",
        "100",
        "--d_model",
        "16",
        "--layers",
        "1",
        "--attention_heads",
        "2",
        "--ffn_dim",
        "32",
        "--parent_max_steps",
        "3",
        "--parent_batch_size",
        "16",
        "--runs",
        "zero_shot",
        "--max_test_samples",
        "4",
        "--num_beams",
        "1",
        "--max_new_tokens",
        "8",
    ]
    metrics = translation_pair.main([*argv, "--output_dir", str(tmp_path / "a")])
    # the offline parent is also scored on its own pair's test split (the same number of pairs)
    assert set(metrics["results"]) == {"parent_own_pair", "zero_shot"}
    assert f"on {parent} test (4 pairs)" in metrics["results"]["parent_own_pair"]["note"]
    assert "parent on its own pair" in (tmp_path / "a" / "README.md").read_text()
    # a 3-step parent cannot translate: the run says so instead of reporting a meaningless transfer
    assert metrics["results"]["parent_own_pair"]["bleu"] < translation_pair.PARENT_MIN_BLEU
    assert len(metrics["warnings"]) == 1 and "has not learnt to translate" in metrics["warnings"][0]
    parents = list((tmp_cache / "translation").iterdir())
    assert len(parents) == 1 and (parents[0] / "nlptransfer_parent.json").is_file()
    stamp = (parents[0] / "model.safetensors").stat().st_mtime_ns
    translation_pair.main([*argv, "--output_dir", str(tmp_path / "b")])  # reuses it
    assert list((tmp_cache / "translation").iterdir()) == parents
    assert (parents[0] / "model.safetensors").stat().st_mtime_ns == stamp
    tok = AutoTokenizer.from_pretrained(parents[0])  # a proper HF tokenizer that appends </s>
    assert tok("doog")["input_ids"][-1] == tok.eos_token_id


def test_parent_max_length_filters_the_parent_pairs(child_tsv, tmp_path, tmp_cache, capsys):
    from nlptransfer.errors import run_cli

    parent = write_tsv(tmp_path / "parent.tsv", toy_pairs(200, "rev", 5))
    argv = [
        "--parent_dataset",
        str(parent),
        "--child_dataset",
        str(child_tsv),
        "--child_train_size",
        "60",
        "--vocab_size",
        "100",
        "--d_model",
        "16",
        "--layers",
        "1",
        "--attention_heads",
        "2",
        "--ffn_dim",
        "32",
        "--parent_max_steps",
        "1",
        "--runs",
        "zero_shot",
        "--max_test_samples",
        "2",
        "--num_beams",
        "1",
        "--max_new_tokens",
        "4",
    ]
    translation_pair.main([*argv, "--parent_max_length", "8", "--output_dir", str(tmp_path / "short")])
    record = json.loads(next((tmp_cache / "translation").glob("*/nlptransfer_parent.json")).read_text())
    n_train = len(bible.load_parallel(str(parent), "src", "tgt", seed=42)["train"])
    assert (
        0 < record["train_pairs"] < n_train
    )  # toy pairs of 2-6 words (+ </s>): only the shorter ones fit 8 pieces
    with pytest.raises(SystemExit) as exit_info:
        run_cli(
            translation_pair.main, [*argv, "--parent_max_length", "1", "--output_dir", str(tmp_path / "x")]
        )
    assert exit_info.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert (
        len(err) == 1 and "no training pair fits 1 / 1 tokens" in err[0] and "--parent_max_length" in err[0]
    )
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------------------------- bad input


def _cli_error(capsys, argv) -> str:
    from nlptransfer.errors import run_cli

    with pytest.raises(SystemExit) as exit_info:
        run_cli(translation_pair.main, argv)
    assert exit_info.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0]
    return err[0]


def test_bad_inputs_fail_with_one_line(capsys, tmp_path, tiny_marian_dir, child_tsv):
    out = str(tmp_path / "never")
    base = ["--parent_model", str(tiny_marian_dir), "--output_dir", out]
    assert "unknown Bible language code 'xx'" in _cli_error(capsys, [*base, "--child_dataset", "bible-xx-en"])
    assert "available" in _cli_error(capsys, [*base, "--child_dataset", "bible-xx-en"])
    assert "both 'fr'" in _cli_error(capsys, [*base, "--child_dataset", "bible-fr-fr"])
    msg = _cli_error(capsys, [*base, "--child_dataset", str(child_tsv), "--child_train_size", "5000"])
    assert "has 97 training pairs" in msg or "training pairs; pass --child_train_size" in msg
    assert "strategy 'frozen' does not apply" in _cli_error(capsys, [*base, "--strategy", "frozen"])
    msg = _cli_error(
        capsys,
        [*base, "--child_dataset", str(child_tsv), "--child_train_size", "50", "--max_source_length", "1"],
    )
    assert "no training pair fits 1 / 64 tokens" in msg and "raise --max_source_length" in msg
    # a tokenizer bigger than the model's embedding matrix
    bad = tmp_path / "mismatch"
    model, tok = load_seq2seq(str(tiny_marian_dir))
    model.resize_token_embeddings(len(tok) - 10)
    model.save_pretrained(bad)
    tok.save_pretrained(bad)
    msg = _cli_error(
        capsys,
        [
            "--parent_model",
            str(bad),
            "--child_dataset",
            str(child_tsv),
            "--output_dir",
            out,
            "--child_train_size",
            "50",
        ],
    )
    assert "tokens but the model's embedding matrix has" in msg
    # a --target_modules typo is found before the run folder exists (it used to fail inside the run)
    msg = _cli_error(
        capsys,
        [*base, "--child_dataset", str(child_tsv), "--child_train_size", "50", "--strategy", "lora"]
        + ["--target_modules", "q_proj", "vproj"],
    )
    assert "target modules vproj not found" in msg and "pick --target_modules from" in msg and "v_proj" in msg
    assert not Path(out).exists()  # nothing written for bad input


def test_a_non_seq2seq_parent_is_refused(tmp_path):
    from tests.tiny import tiny_model_dir

    with pytest.raises(ModelError, match="not an encoder-decoder"):
        load_seq2seq(str(tiny_model_dir(tmp_path)))


# ------------------------------------------------------------------------------ the real asset


@pytest.mark.slow
def test_bible_pairs_hold_out_whole_books_and_cache():
    ds = bible.load_bible("bible-it-en")
    assert {len(ds[s]) for s in ds} == {30090, 133, 879}
    assert set(ds["test"]["book"]) == {43} and set(ds["validation"]["book"]) == {8, 32}
    assert not set(ds["train"]["book"]) & {8, 32, 43}
    first = ds["test"][0]
    assert (first["chapter"], first["verse"]) == (1, 1) and first["target"].startswith(
        "In the beginning was the Word"
    )
    other = bible.load_bible("bible-es-en")  # the same verses on the English side, in the same order
    assert other["test"]["target"] == ds["test"]["target"]
    assert bible._table_path("k").is_file()


@pytest.mark.slow
def test_recipe_on_the_bible_with_a_tiny_parent(tiny_marian_dir, tmp_path):
    out, metrics = _run(
        tmp_path,
        "--parent_model",
        str(tiny_marian_dir),
        "--child_dataset",
        "bible-ro-en",
        "--child_train_size",
        "300",
        "--runs",
        "scratch",
        "transfer",
        "--max_source_length",
        "64",
        "--max_target_length",
        "64",
    )
    assert metrics["child_pair"] == "ro->en" and metrics["test"]["n"] == 6
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert rows[0]["reference"].startswith("In the beginning was the Word")


def test_an_interrupted_run_resumes_from_each_childs_checkpoints(tiny_marian_dir, child_tsv, tmp_path):
    """Issue 15 #13. Was: checkpoints live in checkpoints-<child>/, which --resume did not look in, and its
    message said the run lacked --save_strategy steps. Here the transfer child is cut after 2 of 4 steps."""
    argv = ["--parent_model", str(tiny_marian_dir), "--child_dataset", str(child_tsv)]
    argv += ["--child_train_size", "60", "--max_steps", "4", "--save_strategy", "steps", "--save_steps", "2"]
    argv += ["--seed", "3", "--keep_checkpoints", "true"]  # the cut below needs the checkpoints
    whole, expected = _run(tmp_path / "whole", *argv)
    out, _ = _run(tmp_path / "cut", *argv)
    # What a kill during the transfer child's step 3 leaves: scratch finished, transfer at checkpoint-2.
    run = json.loads((out / "run.json").read_text())
    shutil.rmtree(out / "checkpoints-transfer" / "checkpoint-4")
    for name in run["files"]:
        if not name.startswith("checkpoints-"):
            (out / name).unlink(missing_ok=True)
    run.update(status="running", files=[])
    (out / "run.json").write_text(json.dumps(run))
    with pytest.raises(OutputDirError, match="--resume true"):
        _run(tmp_path / "cut", *argv)
    _, resumed = _run(tmp_path / "cut", *argv, "--resume", "true")
    for system in ("zero_shot", "scratch", "transfer"):
        assert resumed["results"][system]["bleu"] == pytest.approx(expected["results"][system]["bleu"])
    assert resumed["training"]["scratch"]["train_loss"] is None  # finished before the cut: no step ran
    assert resumed["training"]["transfer"]["train_loss"] > 0
    state = json.loads((out / "checkpoints-transfer/checkpoint-4/trainer_state.json").read_text())
    assert state["global_step"] == 4
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    # A finished run has nothing to resume; an output dir without any checkpoint names the real cause.
    with pytest.raises(OutputDirError, match="finished run"):
        _run(tmp_path / "cut", *argv, "--resume", "true")


def test_greedy_decoding_ignores_the_beam_length_penalty(tiny_marian_dir, child_tsv, tmp_path):
    """Found by the property tests: --num_beams 1 with --length_penalty 0 crashed when the child was saved
    (GenerationConfig refuses a beam-only setting without beams)."""
    argv = ["--parent_model", str(tiny_marian_dir), "--child_dataset", str(child_tsv), "--runs", "transfer"]
    out, _ = _run(tmp_path, *argv, "--child_train_size", "60", "--num_beams", "1", "--length_penalty", "0")
    assert AutoModelForSeq2SeqLM.from_pretrained(out).generation_config.num_beams == 1


def test_drop_last_with_a_validation_split_below_one_batch_is_one_line(tiny_marian_dir, child_tsv, tmp_path):
    """Found by the property tests: no validation batch at all, then a KeyError after training."""
    argv = [
        "--parent_model",
        str(tiny_marian_dir),
        "--child_dataset",
        str(child_tsv),
        "--child_train_size",
        "60",
    ]
    with pytest.raises(ConfigError, match="--dataloader_drop_last"):
        _run(tmp_path, *argv, "--dataloader_drop_last", "true", "--per_device_eval_batch_size", "512")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ hostile input


def test_parallel_files_split_at_newlines_only_and_drop_a_bom(tmp_path):
    """`splitlines` also split at U+2028 / U+0085 / form feeds: with one inside a line of each file, both had
    one line more and every pair between the two was silently misaligned. A BOM (Excel's "CSV UTF-8") hid the
    first column: "has no source side ... found source, target"."""
    rows = toy_pairs(12, "rev")
    rows[2]["source"] += "\u2028tail"
    rows[7]["target"] += "\x0cform"
    (tmp_path / "c.de").write_text("".join(r["source"] + "\n" for r in rows), encoding="utf-8-sig")
    (tmp_path / "c.en").write_text("".join(r["target"] + "\r\n" for r in rows), encoding="utf-8")
    ds = bible.load_parallel(str(tmp_path / "c"), "de", "en")
    pairs = {(s, t) for split in ds.values() for s, t in zip(split["source"], split["target"], strict=True)}
    assert pairs == {(r["source"], r["target"]) for r in rows}
    tsv = tmp_path / "bom.tsv"
    write_tsv(tsv, rows[:5])
    tsv.write_bytes("\ufeff".encode() + tsv.read_bytes())
    ds = bible.load_parallel(str(tsv), "de", "en")
    assert sorted(s for split in ds.values() for s in split["source"]) == sorted(
        r["source"] for r in rows[:5]
    )


def test_a_parallel_side_that_is_not_text_is_one_line(tmp_path):
    """A number where a sentence goes passed the checks, then failed with a TypeError while tokenising."""
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"source": i, "target": f"word {i}"}) + "\n" for i in range(5)))
    with pytest.raises(DataError, match="pair 1 has a int source side") as err:
        bible.load_parallel(str(path), "de", "en")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("attention_heads", 0),  # was a ZeroDivisionError traceback (d_model % attention_heads)
        ("attention_heads", -4),
        ("ffn_dim", 0),
        ("extend_vocab_size", 0),
        ("extend_vocab_size", -5),  # the tokenizers trainer's unsigned vocab_size: OverflowError
        ("parent_learning_rate", 0.0),
        ("parent_learning_rate", float("nan")),
    ],
)
def test_offline_parent_and_vocabulary_sizes_must_be_positive(field, value):
    with pytest.raises(ConfigError, match=field) as err:
        translation_pair.TranslationArguments(**{field: value})
    assert "\n" not in str(err.value)


def test_a_parent_in_the_output_dir_is_refused_and_kept(tiny_marian_dir, child_tsv, tmp_path, capsys):
    """A previous run's child as the parent of a new run in the same folder: --overwrite_output_dir removed
    the parent with the previous run's files before the new child was trained."""
    out = tmp_path / "out"
    files = previous_run(out, tiny_marian_dir)
    argv = ["--parent_model", str(out), "--child_dataset", str(child_tsv), "--output_dir", str(out)]
    msg = _cli_error(capsys, [*argv, "--child_train_size", "50", "--overwrite_output_dir", "true", *TINY])
    assert "--parent_model" in msg and "is --output_dir" in msg
    assert all(f.is_file() for f in files)


def test_a_subword_vocabulary_smaller_than_the_alphabet_names_the_least_size():
    """The tokenizers trainer's bare "vocabulary is not large enough to contain all chars" became one line
    naming the flag and the smallest size that trains (which does, and one less does not)."""
    texts = [t for r in toy_pairs(50, "rev") for t in r.values()] + ["ﬁne café"]  # NFKC: "ﬁ" -> "fi"
    with pytest.raises(
        ConfigError, match=r"^--extend_vocab_size 2 is smaller than the (\d+) distinct"
    ) as err:
        train_tokenizer(texts, 2, "--extend_vocab_size")
    least = int(str(err.value).rsplit("pass --extend_vocab_size ", 1)[1].split()[0])
    assert "\n" not in str(err.value) and least > 2
    assert len(train_tokenizer(texts, least)) >= least
    with pytest.raises(ConfigError, match=f"pass --vocab_size {least} or more"):
        train_tokenizer(texts, least - 1)


def test_a_tiny_extend_vocab_size_is_one_line(capsys, tmp_path, tiny_marian_dir, child_tsv):
    argv = ["--parent_model", str(tiny_marian_dir), "--child_dataset", str(child_tsv), "--child_train_size"]
    argv += ["50", "--vocab", "extend", "--extend_vocab_size", "2", "--runs", "transfer"]
    msg = _cli_error(capsys, [*argv, "--output_dir", str(tmp_path / "out"), *TINY])
    assert msg.startswith("error: --extend_vocab_size 2 is smaller than the") and "or more" in msg


def test_languages_that_contradict_a_bible_name_are_one_line(capsys, tmp_path):
    """--child_dataset bible-it-en --source_lang fr used to train it -> en without a word."""
    out = tmp_path / "never"
    base = ["--child_dataset", "bible-it-en", "--output_dir", str(out)]
    msg = _cli_error(capsys, [*base, "--source_lang", "fr"])
    assert msg.endswith(
        "--child_dataset bible-it-en is it -> en, but --source_lang fr says otherwise; pass --child_dataset "
        "bible-fr-en, or leave out --source_lang/--target_lang"
    ), msg
    assert not out.exists()
    args = translation_pair.TranslationArguments(
        child_dataset="bible-it-en", source_lang="IT", target_lang="en"
    )
    assert child_languages(args) == ("it", "en")  # the name's own codes, given again: fine


def test_a_parallel_table_that_is_not_utf8_names_the_byte_in_the_file(tmp_path):
    """The csv reader decodes in chunks, so its error offset counted from the chunk (wrong past ~8 KB)."""
    good = "source\ttarget\n" + "a good line\tune bonne ligne\n" * 1000
    path = tmp_path / "pairs.tsv"
    path.write_bytes(good.encode() + b"caf\xe9\tcafe\n")
    with pytest.raises(DataError, match=rf"not valid UTF-8 \(byte 0xe9 at offset {len(good.encode()) + 3}\)"):
        bible.load_parallel(str(path), "src", "tgt")
