"""Does making MiniLM speak PubMed help it classify PubMed publication types? Four arms, same fine-tuning budget.

    .venv/bin/python -m benchmarks.bench_domain_transfer                  # the measured run (see docs/embeddings.md)
    .venv/bin/python -m benchmarks.bench_domain_transfer --seeds 2 --dapt_steps 40 --out outputs/bench-quick
    .venv/bin/python -m benchmarks.bench_domain_transfer --render_only --out outputs/bench-domain-transfer

Arms, all fine-tuned by `nlptransfer.recipes.text_classification` on the same stratified `pubmed-pubtype`
training subset with the same budget (`FINETUNE` flags below), tested on the same test subset:
  1. base: the embedded all-MiniLM-L6-v2;
  2. +vocab: the base with `--vocab_size` mined PubMed words added (WordPiece entries, mean-of-pieces init;
     `nlptransfer.embeddings.extend_vocabulary` on the backbone, no further training);
  3. +DAPT: `nlptransfer.recipes.domain_pretraining` (masked LM, whole-word masking, a new MLM head since
     MiniLM has none) for `--dapt_steps` steps on `pubmed-abstracts-unindexed`;
  4. +vocab+DAPT: the same words added first, then the same DAPT.
The words are mined once from the training split of `pubmed-abstracts-unindexed` (the abstracts that are not
MEDLINE-indexed: none of them is a pubmed-pubtype text) against the VADER snippets as general English.
Seeds change the fine-tuning (head init, data order); the data subsets and the DAPT models are fixed.
Results are written after every run to <out>/results.json and rendered to <out>/results.md: macro-F1 mean +-
std per arm, fertility of both tokenizers on the test texts, DAPT masked-LM loss before/after, wall times.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

from nlptransfer import embeddings
from nlptransfer.data import load_source
from nlptransfer.recipes import domain_pretraining, text_classification
from nlptransfer.reporting import markdown_table
from nlptransfer.runs import write_json_atomic, write_text_atomic

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DAPT_CORPUS = "pubmed-abstracts-unindexed"
ARMS = ("base", "+vocab", "+DAPT", "+vocab+DAPT")
logger = logging.getLogger("nlptransfer")


def finetune_flags(args) -> list[str]:
    return [
        "--dataset",
        "pubmed-pubtype",
        "--max_train_samples",
        str(args.train),
        "--max_eval_samples",
        str(args.test),
        "--max_length",
        str(args.max_length),
        "--num_train_epochs",
        str(args.epochs),
        "--learning_rate",
        "1e-4",
        "--per_device_train_batch_size",
        "16",
        "--warmup_steps",
        "0.1",
        "--class_weighted_loss",
        "true",
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--load_best_model_at_end",
        "false",
        "--logging_steps",
        "10",
        "--report_to",
        "none",
        "--overwrite_output_dir",
        "true",
    ]


def dapt_flags(args, out: Path, words: Path | None) -> list[str]:
    flags = [
        "--corpus",
        DAPT_CORPUS,
        "--output_dir",
        str(out),
        "--overwrite_output_dir",
        "true",
        "--max_steps",
        str(args.dapt_steps),
        "--max_train_samples",
        str(16 * args.dapt_steps),
        "--max_eval_samples",
        "200",
        "--learning_rate",
        "2e-4",
        "--warmup_steps",
        "0.1",
        "--per_device_train_batch_size",
        "16",
        "--max_length",
        "128",
        "--whole_word_mask",
        "true",
        "--logging_steps",
        "10",
    ]
    return flags + (["--new_words", str(words), "--vocab_init", "mean"] if words else [])


def prepare(args, out: Path, results: dict) -> dict[str, str]:
    """Mine the words, build the +vocab model, run both DAPTs (each once); returns arm -> model path."""
    from transformers import AutoModel, AutoTokenizer

    from nlptransfer.assets import resolve_model

    base_path = resolve_model(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    words_file = out / "words.txt"
    if not words_file.exists():
        started = time.perf_counter()
        corpus = list(load_source(DAPT_CORPUS, label_column=None)["train"]["text"])
        mined = embeddings.mine_domain_vocabulary(
            tokenizer, corpus, embeddings.reference_texts(), size=args.vocab_size
        )
        write_text_atomic(words_file, "".join(c.word + "\n" for c in mined))
        results["mining_seconds"] = round(time.perf_counter() - started, 1)
    words = words_file.read_text(encoding="utf-8").split()
    vocab_dir = out / "models" / "vocab-mean"
    if not (vocab_dir / "config.json").exists():
        model = AutoModel.from_pretrained(base_path)  # the backbone with its pooler, as fine-tuning loads it
        new_tokenizer, ext = embeddings.extend_vocabulary(model, tokenizer, words, init="mean")
        model.save_pretrained(vocab_dir)
        new_tokenizer.save_pretrained(vocab_dir)
    test_texts = list(load_source("pubmed-pubtype")["test"]["text"])[: args.test]
    results["fertility"] = {
        "base": embeddings.tokenizer_fertility(tokenizer, test_texts).as_dict(),
        "extended": embeddings.tokenizer_fertility(
            AutoTokenizer.from_pretrained(vocab_dir), test_texts
        ).as_dict(),
    }
    paths = {"base": MODEL, "+vocab": str(vocab_dir)}
    for arm, words_arg in (("+DAPT", None), ("+vocab+DAPT", words_file)):
        dapt_dir = out / "models" / ("dapt" if words_arg is None else "vocab-dapt")
        if not (dapt_dir / "metrics.json").exists():
            started = time.perf_counter()
            domain_pretraining.main(dapt_flags(args, dapt_dir, words_arg))
            results.setdefault("dapt_seconds", {})[arm] = round(time.perf_counter() - started, 1)
        m = json.loads((dapt_dir / "metrics.json").read_text())
        results.setdefault("dapt", {})[arm] = {
            k: m[k] for k in ("mlm_loss_before", "mlm_loss_after", "perplexity_before", "perplexity_after")
        }
        paths[arm] = str(dapt_dir)
    return paths


def render(results: dict, args) -> str:
    rows = []
    for arm in ARMS:
        runs = results.get("runs", {}).get(arm, {})
        f1 = [r["f1_macro"] for r in runs.values()]
        acc = [r["accuracy"] for r in runs.values()]
        rows.append(
            {
                "arm": arm,
                "seeds": len(f1),
                "macro_f1": f"{statistics.mean(f1):.4f} ± {statistics.stdev(f1) if len(f1) > 1 else 0:.4f}"
                if f1
                else "-",
                "accuracy": f"{statistics.mean(acc):.4f}" if acc else "-",
                "per_seed_f1": ", ".join(f"{v:.3f}" for v in f1),
                "minutes_per_run": f"{statistics.mean(r['seconds'] for r in runs.values()) / 60:.1f}"
                if runs
                else "-",
            }
        )
    fert = results.get("fertility", {})
    fert_rows = [
        {"tokenizer": k, "subwords_per_word": v["fertility"], "fragmented_words": v["fragmented_rate"]}
        for k, v in fert.items()
    ]
    dapt_rows = [{"dapt": k, **v} for k, v in results.get("dapt", {}).items()]
    return (
        "\n\n".join(
            [
                f"# Domain transfer on pubmed-pubtype ({results.get('date', '')})",
                f"Budget: fine-tuning {args.train} stratified training abstracts x {args.epochs} epochs, batch 16, "
                f"lr 1e-4, {args.max_length} tokens, class-weighted loss, no model selection; test on {args.test} stratified test "
                f"abstracts. DAPT {args.dapt_steps} steps x 16 abstracts (128 tokens) of {DAPT_CORPUS}; "
                f"{args.vocab_size} words mined.",
                markdown_table(
                    rows, ["arm", "seeds", "macro_f1", "accuracy", "per_seed_f1", "minutes_per_run"]
                ),
                markdown_table(fert_rows, ["tokenizer", "subwords_per_word", "fragmented_words"])
                if fert_rows
                else "",
                markdown_table(
                    dapt_rows,
                    ["dapt", "mlm_loss_before", "mlm_loss_after", "perplexity_before", "perplexity_after"],
                )
                if dapt_rows
                else "",
            ]
        )
        + "\n"
    )


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="outputs/bench-domain-transfer")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--train", type=int, default=400, help="training abstracts (stratified subsample)")
    parser.add_argument("--test", type=int, default=400, help="validation/test abstracts (stratified)")
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument(
        "--max_length", type=int, default=64, help="fine-tuning tokens (title + start of abstract)"
    )
    parser.add_argument("--dapt_steps", type=int, default=60)
    parser.add_argument("--vocab_size", type=int, default=500)
    parser.add_argument("--render_only", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    results = (
        json.loads(path.read_text()) if path.exists() else {"date": time.strftime("%Y-%m-%d"), "runs": {}}
    )
    results["settings"] = vars(args)
    if not args.render_only:
        paths = prepare(args, out, results)
        write_json_atomic(path, results)
        for seed in range(args.seeds):  # seed-major: every finished seed compares all four arms
            for arm in ARMS:
                if str(seed) in results["runs"].get(arm, {}):
                    continue
                started = time.perf_counter()
                metrics = text_classification.main(
                    [
                        "--model_name_or_path",
                        paths[arm],
                        "--output_dir",
                        str(out / "runs" / f"{arm}-{seed}"),
                        "--seed",
                        str(seed),
                        *finetune_flags(args),
                    ]
                )
                results["runs"].setdefault(arm, {})[str(seed)] = {
                    "f1_macro": metrics["test"]["f1_macro"],
                    "accuracy": metrics["test"]["accuracy"],
                    "seconds": round(time.perf_counter() - started, 1),
                }
                write_json_atomic(path, results)
                write_text_atomic(out / "results.md", render(results, args))
    write_text_atomic(out / "results.md", render(results, args))
    print((out / "results.md").read_text())
    return results


if __name__ == "__main__":
    main()
