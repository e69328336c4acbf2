"""Summary tables and model cards."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A GitHub-markdown table; also readable as plain text in a terminal."""
    cells = [[_fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(list(columns)), sep] + [line(r) for r in cells])


def model_card(
    *,
    title: str,
    base_model: str,
    dataset: str,
    strategy: str,
    label_names: list[str],
    results_table: str,
    trainable: int,
    total: int,
    command: str,
    notes: Sequence[str] = (),
    load_snippet: str,
    pipeline_tag: str = "text-classification",
) -> str:
    """A README.md for the output directory, with the measured metrics."""
    lines = [
        "---",
        "library_name: transformers",
        f"pipeline_tag: {pipeline_tag}",
        "tags: [nlptransfer, transfer-learning]",
        "---",
        f"# {title}",
        "",
        f"Fine-tuned from `{base_model}` on `{dataset}` with the `{strategy}` transfer strategy "
        f"({trainable:,} of {total:,} parameters trained)."
        + (f" Labels: {', '.join(label_names)}." if label_names else ""),
        "",
        "## Results (test splits; measured by this run)",
        "",
        results_table,
        "",
    ]
    return "\n".join(lines + card_tail(load_snippet, command, notes)) + "\n"


def card_tail(load_snippet: str, command: str, notes: Sequence[str] = (), use_note: str = "") -> list[str]:
    """The "Use" (code, then `use_note` if given), "Reproduce" and (if any) "Notes" sections that end every
    model card, as lines."""
    lines = ["## Use", "", "```python", load_snippet, "```", ""]
    lines += [use_note, ""] if use_note else []
    lines += ["## Reproduce", "", "```bash", command, "```"]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return lines
