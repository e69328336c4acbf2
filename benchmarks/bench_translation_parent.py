"""How fast does the small offline Marian parent learn its pair? A learning curve, to choose parent settings.

    .venv/bin/python -m benchmarks.bench_translation_parent                          # the recipe's parent settings
    .venv/bin/python -m benchmarks.bench_translation_parent --learning_rate 3e-3     # a collapsing one
    .venv/bin/python -m benchmarks.bench_translation_parent --max_length 64 --vocab_size 8000
    .venv/bin/python -m benchmarks.bench_translation_parent --no_balance             # child text not repeated

Trains the parent with the recipe's own code (`nlptransfer.translation.prepare_parent` and
`parent_trainer`: the shared tokenizer sees the parent pair and a 3,000-pair child sample, the child source
repeated to the parent's size unless --no_balance), and every --every steps translates
(greedy) the first 100 validation pairs of the parent pair (Ruth and Jonah for the Bible) and the first 100
test pairs of the child (John 1:1-4:6) zero-shot, printing BLEU and chrF. The curve goes to
<out>/curve.json. Nothing is cached: the recipe's parent cache is not touched.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from transformers import TrainerCallback

from nlptransfer.data import subsample
from nlptransfer.data.bible import load_parallel, parse_bible_name
from nlptransfer.modeling.seq2seq import translate, translation_scores
from nlptransfer.translation import TranslationArguments, parent_trainer, prepare_parent


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parent_dataset", default="bible-es-en")
    ap.add_argument("--child_dataset", default="bible-it-en")
    ap.add_argument("--child_train_size", type=int, default=3000)
    ap.add_argument("--learning_rate", type=float, default=1e-3)
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--warmup", type=float, default=0.05)
    ap.add_argument("--vocab_size", type=int, default=4000)
    ap.add_argument(
        "--max_length", type=int, default=32, help="parent pairs longer (either side) are left out"
    )
    ap.add_argument("--d_model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--ffn_dim", type=int, default=512)
    ap.add_argument(
        "--init_std",
        type=float,
        default=None,
        help="weight init std (unset: d_model**-0.5, build_marian's default)",
    )
    ap.add_argument(
        "--no_balance", action="store_true", help="do not repeat the child source for the tokenizer"
    )
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default="benchmarks/results/translation-parent")
    args = ap.parse_args(argv)

    recipe_args = TranslationArguments(
        parent_dataset=args.parent_dataset,
        child_dataset=args.child_dataset,
        vocab_size=args.vocab_size,
        d_model=args.d_model,
        layers=args.layers,
        ffn_dim=args.ffn_dim,
        parent_max_steps=args.steps,
        parent_learning_rate=args.learning_rate,
        parent_batch_size=args.batch_size,
        parent_max_length=args.max_length,
    )
    child = load_parallel(args.child_dataset, *parse_bible_name(args.child_dataset), seed=args.seed)
    # The recipe's seeded sample of the child's training pairs.
    child_train = subsample(child["train"], args.child_train_size, args.seed, label_column=None)
    tokenizer, model, train, parent = prepare_parent(
        recipe_args,
        child_train,
        args.seed,
        child_source_repeat=1 if args.no_balance else None,
        init_std=args.init_std,
    )
    print(f"{len(train)} of {len(parent['train'])} parent pairs fit {args.max_length} pieces", flush=True)
    probes = {
        "parent_validation": (parent["validation"].select(range(100)), "own pair, greedy"),
        "child_zero_shot": (child["test"].select(range(100)), "child source, greedy"),
    }
    curve: list[dict] = []
    started = time.time()

    class Probe(TrainerCallback):
        def on_step_end(self, targs, state, control, model=None, **kwargs):
            if state.global_step % args.every and state.global_step != args.steps:
                return
            model.eval()
            row = {"step": state.global_step, "seconds": round(time.time() - started, 1)}
            for name, (ds, _) in probes.items():
                out = translate(
                    model, tokenizer, list(ds["source"]), num_beams=1, max_new_tokens=64, batch_size=50
                )
                scores = translation_scores(out, list(ds["target"]))
                row[name] = {
                    "bleu": round(scores["bleu"], 2),
                    "chrf": round(scores["chrf"], 2),
                    "example": out[3],
                }
            model.train()
            curve.append(row)
            print(
                f"step {row['step']} ({row['seconds']:.0f} s): "
                + "; ".join(f"{k} BLEU {row[k]['bleu']:.2f} chrF {row[k]['chrf']:.1f}" for k in probes)
                + f" | {row['parent_validation']['example'][:70]!r}",
                flush=True,
            )

    out = Path(args.out)
    trainer = parent_trainer(
        recipe_args,
        model,
        tokenizer,
        train,
        str(out / "trainer"),
        args.seed,
        warmup=args.warmup,
        callbacks=[Probe()],
    )
    trainer.train()
    result = {
        "settings": vars(args),
        "parent_pairs": len(train),
        "curve": curve,
        "losses": [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "curve.json").write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"wrote {out / 'curve.json'}")
    return result


if __name__ == "__main__":
    main()
