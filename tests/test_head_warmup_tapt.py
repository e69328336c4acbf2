"""Issue 19, continued pretraining: the MLM-head warm-up (encoder frozen), TAPT on the task's training texts
only (`--corpus task`), packing into blocks, and their bad inputs. Tiny BERTs, seconds each."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from tiny import DOMAIN, tiny_config, tiny_domain_model_dir, tiny_wordpiece
from transformers import AutoTokenizer, BertForMaskedLM

from nlptransfer import embeddings
from nlptransfer.config import RunArguments
from nlptransfer.data import load_source
from nlptransfer.embeddings import pretraining
from nlptransfer.errors import run_cli
from nlptransfer.recipes import domain_pretraining as dp


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_domain_model_dir(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def mlm_model_dir(tmp_path_factory):
    """The tiny domain BERT *with* a masked-LM head in its checkpoint."""
    path = tiny_wordpiece(tmp_path_factory.mktemp("models") / "tiny-mlm-bert")
    torch.manual_seed(0)
    BertForMaskedLM(tiny_config(len(AutoTokenizer.from_pretrained(path)))).save_pretrained(path)
    return path


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "domain.txt"
    path.write_text("\n".join(DOMAIN * 4) + "\n", encoding="utf-8")
    return path


def _argv(model, corpus, out, *extra):
    flags = {
        "model_name_or_path": model,
        "corpus": corpus,
        "output_dir": out,
        "max_steps": 20,
        "per_device_train_batch_size": 8,
        "learning_rate": "5e-3",
        "max_length": 32,
        "block_size": 16,
        "use_cpu": "true",
        "logging_steps": 10,
        "warmup_steps": 0,
        "mlm_probability": 0.3,
        "head_warmup_steps": 0,
        "max_eval_samples": 20,
    }
    return [str(x) for key, value in flags.items() for x in (f"--{key}", value)] + list(extra)


# ------------------------------------------------------------------------------------------ head warm-up


def test_head_warmup_leaves_every_encoder_weight_unchanged(model_dir, tmp_path):
    model, _, new_head = embeddings.load_mlm_model(str(model_dir))
    assert new_head and all(name.startswith("cls.") for name in new_head)  # MiniLM-like: no MLM head
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoder = {k: v.clone() for k, v in model.base_model.state_dict().items()}
    head = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("bert.")}
    features = embeddings.mlm_features(tokenizer, DOMAIN * 4, length=16, whole_word_mask=True, packing=True)
    held_out = embeddings.mlm_features(tokenizer, DOMAIN, length=16, whole_word_mask=True, packing=True)
    before = embeddings.mlm_loss(model, tokenizer, held_out, batch_size=8, mlm_probability=0.3)
    args = RunArguments(
        output_dir=str(tmp_path / "out"),
        use_cpu=True,
        report_to="none",
        per_device_train_batch_size=8,
        save_strategy="no",
        logging_steps=5,
        max_steps=1,
    )
    warmup = embeddings.warm_up_head(model, tokenizer, features, args, steps=40, learning_rate=1e-2)

    for key, value in model.base_model.state_dict().items():
        assert torch.equal(value, encoder[key]), f"the warm-up changed encoder weight {key}"
    changed = [k for k, v in model.state_dict().items() if k in head and not torch.equal(v, head[k])]
    assert "cls.predictions.transform.dense.weight" in changed and "cls.predictions.bias" in changed
    assert warmup.trained and not any(name.startswith("bert.") for name in warmup.trained)
    assert all(p.requires_grad for p in model.parameters())  # everything trains again afterwards
    assert warmup.steps == 40 and warmup.log_history[-1]["step"] == 40
    assert embeddings.mlm_loss(model, tokenizer, held_out, batch_size=8, mlm_probability=0.3) < before
    assert args.max_steps == 1 and args.learning_rate == 5e-5  # the caller's arguments are untouched


def test_recipe_warms_up_a_missing_head_and_reports_three_perplexities(model_dir, corpus, tmp_path):
    out = tmp_path / "out"
    argv = _argv(model_dir, corpus, out, "--head_warmup_steps", "30", "--head_warmup_learning_rate", "1e-2")
    metrics = dp.main(argv)
    assert metrics["head_warmup"]["steps"] == 30 and metrics["head_warmup"]["learning_rate"] == 1e-2
    assert metrics["perplexity_after_warmup"] < metrics["perplexity_before"]
    assert metrics["mlm_loss_after"] < metrics["mlm_loss_before"]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["perplexity_after_warmup"] == pytest.approx(metrics["perplexity_after_warmup"])
    card = (out / "README.md").read_text()
    assert "after head warm-up" in card and "head warm-up (30 steps, encoder frozen" in card
    assert "warmed up alone for 30 steps" in card


def test_no_warmup_when_the_checkpoint_has_its_mlm_head(mlm_model_dir, corpus, tmp_path):
    metrics = dp.main(_argv(mlm_model_dir, corpus, tmp_path / "out", "--head_warmup_steps", "30"))
    assert metrics["new_mlm_head"] == [] and metrics["head_warmup"] is None
    assert "mlm_loss_after_warmup" not in metrics


def test_masked_positions_only_loss_equals_the_models_own(model_dir):
    model, _, _ = embeddings.load_mlm_model(str(model_dir))
    model.eval()  # no dropout: both losses see the same network
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    features = embeddings.mlm_features(tokenizer, DOMAIN[:8], length=16, whole_word_mask=True, packing=True)
    collator = embeddings.MaskingCollator(tokenizer, mlm_probability=0.3, whole_word_mask=True, seed=1)
    batch = collator(features)
    assert embeddings.mlm_head(model) is model.cls
    ours = embeddings.masked_lm_loss(model, batch)
    ours.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    theirs = model(**batch).loss
    theirs.backward()
    torch.testing.assert_close(ours, theirs)
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, msg=name)


# ------------------------------------------------------------------------------------------ packing


def test_packing_cuts_the_token_stream_into_full_blocks(model_dir):
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    texts = DOMAIN[:4]
    whole = [tokenizer(t)["input_ids"] for t in texts]
    stream = [i for ids in whole for i in ids]
    blocks = embeddings.mlm_features(tokenizer, texts, length=8, whole_word_mask=True, packing=True)
    assert [len(b["input_ids"]) for b in blocks] == [8] * (len(stream) // 8)  # the short last block dropped
    assert [i for b in blocks for i in b["input_ids"]] == stream[: 8 * len(blocks)]  # nothing truncated
    assert all(len(b["offset_mapping"]) == 8 == len(b["special_tokens_mask"]) for b in blocks)
    one = embeddings.mlm_features(tokenizer, texts[:1], length=64, whole_word_mask=False, packing=True)
    assert len(one) == 1 and one[0]["input_ids"] == whole[0]  # a single short block is kept
    truncated = embeddings.mlm_features(tokenizer, texts, length=5, whole_word_mask=False, packing=False)
    assert [f["input_ids"] for f in truncated] == [ids[:4] + ids[-1:] for ids in whole]


# ------------------------------------------------------------------------------------------ TAPT


def _task_file(tmp_path):
    """A labelled task whose test texts all contain 'movie' and validation texts 'film' (single tokens);
    the training texts are domain sentences. The split is the classification recipes' (labels + seed)."""
    labels = ["a" if i % 3 else "b" for i in range(90)]
    probe = tmp_path / "probe.csv"
    with probe.open("w", newline="") as f:
        csv.writer(f).writerows([["text", "label", "idx"]] + [[f"t {i}", y, i] for i, y in enumerate(labels)])
    splits = load_source(str(probe), seed=42)
    role = {i: "train" for i in range(90)}
    role.update({i: "validation" for i in splits["validation"]["idx"]})
    role.update({i: "test" for i in splits["test"]["idx"]})
    text = {"train": lambda i: DOMAIN[i % 4], "validation": lambda i: "the film was good"}
    text["test"] = lambda i: "the movie with the actor"
    path = tmp_path / "task.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([["text", "label"]] + [[text[role[i]](i), y] for i, y in enumerate(labels)])
    final = load_source(str(path), seed=42)
    assert all("movie" in t for t in final["test"]["text"]) and all(
        "film" in t for t in final["validation"]["text"]
    )
    assert not any("movie" in t or "film" in t for t in final["train"]["text"])
    return path, len(final["train"])


def test_tapt_never_gives_a_test_text_to_the_collator(model_dir, tmp_path, monkeypatch):
    task, n_train = _task_file(tmp_path)
    seen: list[tuple[int | None, list[int]]] = []
    original = pretraining.MaskingCollator.torch_call

    def recording(self, examples):
        seen.extend((self.seed, list(e["input_ids"])) for e in examples)
        return original(self, examples)

    monkeypatch.setattr(pretraining.MaskingCollator, "torch_call", recording)
    argv = _argv(model_dir, "task", tmp_path / "out", "--task_dataset", str(task), "--head_warmup_steps", "5")
    metrics = dp.main(argv)
    assert metrics["mode"] == "tapt" and metrics["corpus"] == str(task)
    assert metrics["train_texts"] == n_train and metrics["examples"]["packing"] is True
    tok = AutoTokenizer.from_pretrained(model_dir)
    movie, film, hepato = (tok.convert_tokens_to_ids(w) for w in ("movie", "film", "he"))
    trained = [ids for seed, ids in seen if seed is None]  # the training collators (warm-up and main)
    measured = [ids for seed, ids in seen if seed is not None]  # the held-out loss (seeded masking)
    assert trained and measured and any(hepato in ids for ids in trained)
    assert not any(movie in ids for _, ids in seen)  # no test text, ever
    assert not any(film in ids for ids in trained)  # validation texts are only measured ...
    assert any(film in ids for ids in measured)  # ... (so the check can see them)


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--head_warmup_steps", "-1"], "head_warmup_steps=-1 must be >= 0"),
        (["--head_warmup_learning_rate", "0"], "head_warmup_learning_rate=0.0 must be a number > 0"),
        (["--corpus", "task", "--task_dataset", ""], "--corpus task pretrains on the training texts"),
        (["--corpus", "task", "--task_dataset", "{only_test}"], "no train.* file"),
        (["--corpus", "task", "--task_dataset", "{task}", "--label_column", "none"], "splits the task by"),
        (["--block_size", "100"], "--block_size 100 is more tokens than model"),
        (["--block_size", "0"], "block_size=0 must be >= 1"),
    ],
    ids=["warmup-steps", "warmup-lr", "no-task", "task-without-train", "task-unlabelled", "block", "block-0"],
)
def test_bad_inputs_one_line_exit_2_nothing_written(model_dir, corpus, tmp_path, capsys, extra, message):
    only_test = tmp_path / "only_test"
    only_test.mkdir()
    (only_test / "test.csv").write_text("text,label\nthe study,a\nthe patients,b\n", encoding="utf-8")
    task = tmp_path / "task.csv"
    task.write_text("text,label\n" + "".join(f"{t},{'ab'[i % 2]}\n" for i, t in enumerate(DOMAIN)))
    extra = [e.format(only_test=only_test, task=task) for e in extra]
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        run_cli(dp.main, _argv(model_dir, corpus, out, *extra))
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert exc.value.code == 2 and len(errors) == 1 and message in errors[0], errors
    assert not out.exists()


# ------------------------------------------------------------------------------------------ the benchmark


def test_bench_dapt_flags_parse_and_the_curve_renders_and_resumes(tmp_path, monkeypatch):
    from benchmarks import bench_dapt
    from nlptransfer.recipes import text_classification

    model_args, data_args, *_, training_args = text_classification.make_parser().parse(
        bench_dapt.finetune_flags(500, 2, 300, 48, 2e-4)
    )
    assert data_args.max_train_samples == 500 and training_args.num_train_epochs == 2
    assert data_args.max_eval_samples == 300 and model_args.max_length == 48
    assert training_args.learning_rate == 2e-4 and not training_args.load_best_model_at_end
    quick = bench_dapt.parse_args(["--quick", "--", "--block_size", "32"])
    assert quick.steps == [0, 2] and quick.seeds == 2 and quick.out == "outputs/bench-dapt-quick"
    assert (
        quick.pretrain_flags[-2:] == ["--block_size", "32"] and "--head_warmup_steps" in quick.pretrain_flags
    )
    assert bench_dapt.parse_args(["--quick", "--out", "x"]).out == "x"
    assert bench_dapt.parse_args([]).steps == [0, 200, 400, 800]
    for config in bench_dapt.PRETRAIN.values():
        _, args, _, training_args = dp.make_parser().parse(["--config", config, "--max_steps", "7"])
        assert training_args.max_steps == 7 and args.packing and args.head_warmup_steps > 0
    calls = []

    def fake_pretrain(out, corpus, steps, flags):
        calls.append(("pretrain", corpus, steps))
        ppl = {"perplexity_before": 30000.0, "perplexity_after_warmup": 900.0, "perplexity_after": 50.0}
        return {"kind": "pretrain", "corpus": corpus, "steps": steps, "model": f"m-{corpus}-{steps}", **ppl}

    def fake_finetune(out, corpus, steps, model, seed, budget):
        calls.append(("finetune", corpus, steps, model, seed))
        gain = {"base": 0.0, "tapt": 0.03, "dapt": -0.01}[corpus] * steps / 10
        return {
            "kind": "finetune",
            "corpus": corpus,
            "steps": steps,
            "seed": seed,
            "score": 0.5 + gain * (1 + seed / 10) + seed / 100,  # the gain varies a little with the seed
        }

    def with_process(fn):
        return lambda *a: fn(*a) | {"process_seconds": 60.0, "load_before": 0.1}

    monkeypatch.setattr(bench_dapt, "pretrain", with_process(fake_pretrain))
    monkeypatch.setattr(bench_dapt, "finetune", with_process(fake_finetune))
    argv = ["--steps", "0", "10", "20", "--seeds", "2", "--out", str(tmp_path)]
    bench_dapt.main(argv)
    assert calls[:2] == [
        ("finetune", "base", 0, bench_dapt.BASE, 0),
        ("finetune", "base", 0, bench_dapt.BASE, 1),
    ]
    assert ("finetune", "tapt", 20, "m-tapt-20", 1) in calls and len(calls) == 2 + 2 * 2 * (1 + 2)
    table = (tmp_path / "results.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| tapt") and "| 20 " in line)
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[:4] == ["tapt", "20", "2", "0.568 ± 0.011"] and cells[4].startswith("+0.063 (p=")
    assert "30,000.0" in table and "900.0" in table
    calls.clear()
    bench_dapt.main(argv)  # resumes: everything is done
    assert calls == []
    bench_dapt.main([*argv, "--steps", "0", "10", "20", "40"])  # one more point: only its runs
    assert calls == [
        ("pretrain", c, 40) if i == 0 else ("finetune", c, 40, f"m-{c}-40", i - 1)
        for c in ("tapt", "dapt")
        for i in range(3)
    ]
    with pytest.raises(SystemExit, match="other settings"):  # never mixed with another budget
        bench_dapt.main([*argv, "--train", "99"])
