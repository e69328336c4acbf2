"""Model cards: the README.md every run writes into its output directory.

`render_card` is the one writer (front matter, title, body, then "Use", "Reproduce" and "Notes");
`model_card` is the card of a fine-tuned model with its measured results and `pretraining_card` the card of
a continued-pretraining (DAPT/TAPT) run, both written through it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["model_card", "pretraining_card", "render_card"]

_DEFAULT_TAGS = ("nlptransfer", "transfer-learning")


def render_card(
    *,
    title: str,
    body: Sequence[str],
    load_snippet: str,
    command: str,
    notes: Sequence[str] = (),
    use_note: str = "",
    pipeline_tag: str = "text-classification",
    tags: Sequence[str] = _DEFAULT_TAGS,
) -> str:
    """A model card: Hub front matter, `# title`, the `body` lines, then the sections that end every card:
    "Use" (`load_snippet` as Python, then `use_note` if given), "Reproduce" (`command`) and "Notes" (if any).
    """
    lines = [
        "---",
        "library_name: transformers",
        f"pipeline_tag: {pipeline_tag}",
        f"tags: [{', '.join(tags)}]",
        "---",
        f"# {title}",
        "",
        *body,
        "## Use",
        "",
        "```python",
        load_snippet,
        "```",
        "",
    ]
    lines += [use_note, ""] if use_note else []
    lines += ["## Reproduce", "", "```bash", command, "```"]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def model_card(
    *,
    title: str,
    base_model: str,
    dataset: str,
    strategy: str,
    label_names: list[str],
    pooling: str = "pooler",
    results_table: str,
    trainable: int,
    total: int,
    command: str,
    notes: Sequence[str] = (),
    load_snippet: str,
    pipeline_tag: str = "text-classification",
) -> str:
    """The card of a model fine-tuned from `base_model`, with the metrics this run measured."""
    body = [
        f"Fine-tuned from `{base_model}` on `{dataset}` with the `{strategy}` transfer strategy and "
        f"`{pooling}` pooling ({trainable:,} of {total:,} parameters trained)."
        + (f" Labels: {', '.join(label_names)}." if label_names else ""),
        "",
        "## Results (test splits; measured by this run)",
        "",
        results_table,
        "",
    ]
    return render_card(
        title=title,
        body=body,
        load_snippet=load_snippet,
        command=command,
        notes=notes,
        pipeline_tag=pipeline_tag,
    )


def pretraining_card(
    metrics: Mapping[str, Any],
    *,
    base_model: str,
    strategy: str,
    whole_word_mask: bool,
    table: str,
    command: str,
    notes: Sequence[str] = (),
    output_dir: str | Path,
) -> str:
    """The card of a masked-LM model pretrained further on a corpus (`metrics`: the run's metrics.json, with
    mode, corpus, train_texts and heldout_texts); `table`: its before/after results."""
    mode = "task-adaptive (TAPT)" if metrics["mode"] == "tapt" else "domain-adaptive (DAPT)"
    corpus = metrics["corpus"]
    head = metrics.get("head_warmup")
    warmup = (
        f", after a head warm-up ({head['steps']} steps, encoder frozen, learning rate {head['learning_rate']:g})"
        if head
        else ""
    )
    body = [
        f"Continued masked-LM training ({strategy}, whole-word masking "
        f"{'on' if whole_word_mask else 'off'}) on {metrics['train_texts']} texts of `{corpus}`. "
        f"Masked-LM loss on {metrics['heldout_texts']} held-out texts, same tokenizer and masking before training"
        f"{warmup} and after; tokenizer fertility (subwords per word) on the same texts:",
        "",
        table,
        "",
    ]
    load_snippet = "\n".join(
        [
            "from transformers import AutoModelForSequenceClassification, pipeline",
            f'fill = pipeline("fill-mask", model="{output_dir}")',
            f'clf = AutoModelForSequenceClassification.from_pretrained("{output_dir}", num_labels=4)  # then fine-tune',
        ]
    )
    use_note = f"or `python -m nlptransfer.recipes.text_classification --model_name_or_path {output_dir}`."
    return render_card(
        title=f"{Path(base_model).name}, {mode} masked-LM pretraining on {corpus}",
        body=body,
        load_snippet=load_snippet,
        command=command,
        notes=notes,
        use_note=use_note,
        pipeline_tag="fill-mask",
        tags=("nlptransfer", "domain-adaptation", "dapt"),
    )
