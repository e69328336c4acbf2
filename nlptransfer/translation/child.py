"""The child: its vocabulary extended from the parent's, its training (`fit_child`), every system's
translations and BLEU/chrF on its test pairs (`ChildTest`), saving it and its model card's notes."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from transformers import DataCollatorForSeq2Seq, GenerationConfig

from nlptransfer.embeddings import extend_subword_vocabulary
from nlptransfer.modeling import count_parameters, save_classifier
from nlptransfer.modeling.seq2seq import (
    check_vocab,
    load_seq2seq,
    tokenize_pairs,
    translate,
    translation_scores,
    unseen_subwords,
)
from nlptransfer.run_dirs import last_checkpoint
from nlptransfer.runs import RunWriter
from nlptransfer.trainers.translation import TranslationTrainingArguments, TranslationTransferTrainer
from nlptransfer.training import train_or_restore
from nlptransfer.translation.config import TranslationArguments

logger = logging.getLogger("nlptransfer")


@dataclass
class ChildTest:
    """The child's test pairs, the generation settings, and every system's translations and scores on them."""

    sources: list[str]
    references: list[str]
    generation: dict
    outputs: dict[str, list[str]] = field(default_factory=dict)
    results: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def of(cls, test, args: TranslationArguments, batch_size: int) -> ChildTest:
        generation = dict(
            num_beams=args.num_beams,
            max_new_tokens=args.max_new_tokens,
            # beam search only: with num_beams 1 GenerationConfig refuses any length_penalty but the default
            length_penalty=args.length_penalty if args.num_beams > 1 else 1.0,
            batch_size=batch_size,
            max_source_length=args.max_source_length * 4,  # test sources are not filtered by length
            prefix=args.source_prefix,
        )
        return cls(list(test["source"]), list(test["target"]), generation)

    def score(self, system: str, model, tokenizer) -> dict:
        """Translate the test sources with `model`; its BLEU/chrF, also kept in `results[system]`."""
        self.outputs[system] = translate(model, tokenizer, self.sources, **self.generation)
        self.results[system] = translation_scores(self.outputs[system], self.references)
        return self.results[system]

    def predictions_jsonl(self) -> str:
        """One JSON line per test pair: source, reference and every system's translation."""
        rows = (
            {"source": s, "reference": r, **{system: out[i] for system, out in self.outputs.items()}}
            for i, (s, r) in enumerate(zip(self.sources, self.references, strict=True))
        )
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def extend_child_vocabulary(parent, tokenizer, child_train, args: TranslationArguments):
    """(tokenizer + the child's frequent subwords the parent lacks, the added tokens); `parent`'s embeddings
    grow in place, new rows initialised from the parent's embeddings of their pieces."""
    texts = list(child_train["source"]) + list(child_train["target"])
    new = unseen_subwords(tokenizer, texts, args.extend_vocab_size)
    tokenizer, added = extend_subword_vocabulary(parent, tokenizer, new)
    logger.info("vocabulary extended by %d child subwords (now %d)", len(added), len(tokenizer))
    return tokenizer, added


def fit_child(
    model, tokenizer, features, validation, args, training_args, name: str, **trainer_kwargs
) -> dict:
    """Train a child on `features` (`filtered_features` of its pairs) with the child training arguments;
    returns losses, timings and parameter counts."""
    valid = tokenize_pairs(
        validation, tokenizer, args.max_source_length, args.max_target_length, prefix=args.source_prefix
    )
    targs = _child_args(training_args, name)
    trainer = TranslationTransferTrainer(
        model=model,
        args=targs,
        train_dataset=features,
        eval_dataset=valid,
        processing_class=tokenizer,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),
        **trainer_kwargs,
    )
    t0 = time.time()
    result = train_or_restore(trainer, targs.resume_from_checkpoint)
    seconds = time.time() - t0
    evaluation = trainer.evaluate()
    trainable, total = count_parameters(model)
    out = Path(targs.output_dir)
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()  # no checkpoints were saved (save_strategy "no"): leave no empty folder behind
    logger.info("%s child: %.1f min, validation loss %.3f", name, seconds / 60, evaluation["eval_loss"])
    return {
        "train_loss": result.training_loss,  # None: resumed from the last step, no step ran here
        "validation_loss": evaluation["eval_loss"],
        "validation_perplexity": math.exp(min(evaluation["eval_loss"], 50)),
        "train_seconds": round(seconds, 1),
        "train_pairs_used": len(features),
        "trainable_parameters": trainable,
        "total_parameters": total,
        "log_history": trainer.state.log_history,
    }


def _child_args(training_args, name: str) -> TranslationTrainingArguments:
    """The user's child training arguments, with checkpoints (if any) in a per-run subfolder."""
    values = {f.name: getattr(training_args, f.name) for f in dataclasses.fields(training_args) if f.init}
    values["output_dir"] = str(Path(training_args.output_dir) / f"checkpoints-{name}")
    values["disable_tqdm"] = True
    # --resume: this child continues from its own last checkpoint (none: it starts afresh)
    checkpoint = last_checkpoint(values["output_dir"]) if training_args.resume else None
    values["resume_from_checkpoint"] = str(checkpoint) if checkpoint else None
    if checkpoint:
        logger.info("%s child: resuming from %s", name, checkpoint)
    return TranslationTrainingArguments(**values)


def save_child(model, tokenizer, run: RunWriter, generation: dict, merge_adapters: bool) -> None:
    """The transferred child as a plain transformers model whose generation_config holds the beam settings."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.generation_config = GenerationConfig.from_model_config(base.config)
    base.generation_config.update(
        num_beams=generation["num_beams"],
        max_new_tokens=generation["max_new_tokens"],
        length_penalty=generation["length_penalty"],
        early_stopping=generation["num_beams"] > 1,
        decoder_start_token_id=base.config.decoder_start_token_id,
    )
    save_classifier(model, tokenizer, run, merge_adapters=merge_adapters)
    if run.is_main:
        check_saved(run.output_dir)


def check_saved(output_dir: Path) -> None:
    """The saved child reloads with plain transformers and its tokenizer fits it (fail loudly, not later)."""
    model, tokenizer = load_seq2seq(str(output_dir))
    check_vocab(model, tokenizer, str(output_dir))


def card_notes(args: TranslationArguments, n_test: int, gain: dict | None) -> list[str]:
    """The model card's notes: the test set, the metrics, published gains and the measured one."""
    notes = [
        f"Test: {n_test} pairs of the child's test split; for bible-* that is the Gospel of John from 1:1 on, "
        "a book held out of every split of every pair (no model saw it in any language).",
        "BLEU and chrF: sacrebleu defaults (13a, chrF char order 6) through nlptransfer's bundled evaluate modules.",
        "Published parent->child gains for comparison (different data and far larger models): Zoph et al. 2016 "
        "+5.6 BLEU on average (e.g. Uzbek 10.7 -> 14.4); Kocmi & Bojar 2018 EN->ET 17.03 -> 19.74.",
    ]
    if gain:
        notes.append(
            f"Measured gain of transfer over scratch: BLEU {gain['bleu']:+.2f}, chrF {gain['chrf']:+.2f}."
        )
    return notes


def load_snippet(output_dir: Path, example: str, prefix: str) -> str:
    """How to use the saved child (transformers 5 has no "translation" pipeline: generate directly)."""
    return (
        "from transformers import AutoModelForSeq2SeqLM, AutoTokenizer\n"
        f"tokenizer = AutoTokenizer.from_pretrained('{output_dir}')\n"
        f"model = AutoModelForSeq2SeqLM.from_pretrained('{output_dir}')  # beam settings in generation_config.json\n"
        f"inputs = tokenizer([{(prefix + example)!r}], return_tensors='pt')\n"
        "print(tokenizer.batch_decode(model.generate(**inputs), skip_special_tokens=True)[0])"
    )
