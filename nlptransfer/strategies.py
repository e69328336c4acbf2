"""THE table of transfer strategies (`--strategy`): how each is built, what trains, whether it merges.

A leaf module (no nlptransfer imports) so that `nlptransfer.config` (choices, help) and `nlptransfer list`
read the same rows that `nlptransfer.modeling.adapters` builds models from.

Each row: `peft_type` (the peft method, `None` for the three strategies that need no peft), `options`
(peft config keyword -> the `TransferArguments` field that sets it), `fixed` (peft keywords set by the
strategy itself), `merges` (the saved top level is a merged plain transformers model; otherwise it holds
the adapter), `seq2seq` (applies to a translation child, whose output must be a plain model: merging
methods only).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Strategy:
    name: str
    trains: str
    peft_type: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    merges: bool = False
    seq2seq: bool = False

    def describe(self) -> str:
        """One line: what trains, and what the output directory's top level holds."""
        if self.name == "peft":
            saved = "merged if its method merges, else the adapter"
        elif self.peft_type is None:
            saved = "plain model"
        else:
            saved = "merges into a plain model" if self.merges else "cannot merge: adapter"
        return f"{self.trains} [{saved}]"


_LORA = {"r": "lora_r", "lora_alpha": "lora_alpha", "lora_dropout": "lora_dropout"}
_TARGETS = {"target_modules": "target_modules"}

TABLE: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("full", "every pretrained weight + the new head", seq2seq=True),
        Strategy("frozen", "the new head only (feature extraction; features cached on disk)"),
        Strategy("bitfit", "every bias term + the new head (BitFit; no peft)"),
        Strategy(
            "lora",
            "low-rank updates of the target modules + head",
            "LORA",
            {**_LORA, **_TARGETS},
            {},
            True,
            True,
        ),
        Strategy(
            "dora",
            "LoRA with weight decomposition (magnitude + low-rank direction) + head",
            "LORA",
            {**_LORA, **_TARGETS},
            {"use_dora": True},
            True,
            True,
        ),
        Strategy(
            "ia3", "learned scaling vectors of the target modules + head", "IA3", _TARGETS, {}, True, True
        ),
        Strategy(
            "loha",
            "low-rank Hadamard-product updates + head",
            "LOHA",
            {"r": "lora_r", "alpha": "lora_alpha", **_TARGETS},
            {},
            True,
            True,
        ),
        Strategy(
            "lokr",
            "low-rank Kronecker-product updates + head",
            "LOKR",
            {"r": "lora_r", "alpha": "lora_alpha", **_TARGETS},
            {},
            True,
            True,
        ),
        Strategy(
            "vera",
            "per-layer scaling vectors over shared frozen random low-rank matrices (rank --lora_r) + head",
            "VERA",
            {"r": "lora_r", "vera_dropout": "lora_dropout", **_TARGETS},
            {},
            True,
            True,
        ),
        Strategy(
            "prefix_tuning",
            "per-layer key/value prefixes (--num_virtual_tokens) + head; needs a model taking past_key_values",
            "PREFIX_TUNING",
            {"num_virtual_tokens": "num_virtual_tokens"},
        ),
        Strategy(
            "prompt_tuning",
            "a soft prompt of --num_virtual_tokens input embeddings + head",
            "PROMPT_TUNING",
            {"num_virtual_tokens": "num_virtual_tokens"},
        ),
        Strategy(
            "ln_tuning",
            "the LayerNorm weights and biases + head",
            "LN_TUNING",
            _TARGETS,
        ),
        Strategy("peft", "whatever the peft config in --peft_config FILE trains + head (any peft method)"),
    )
}
STRATEGIES = tuple(TABLE)
MERGING_PEFT_TYPES = frozenset(s.peft_type for s in TABLE.values() if s.merges and s.peft_type)


def strategy_help() -> str:
    """The `--strategy` help: every row, one line each."""
    return "How to transfer: " + "; ".join(f"{s.name} ({s.describe()})" for s in TABLE.values()) + "."
