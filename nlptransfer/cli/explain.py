"""`nlptransfer explain`: token attributions (layer integrated gradients, captum) for one text."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nlptransfer.cli.common import Subcommand, add_loading_flags, check_output, user_path
from nlptransfer.cli.predict import check_positive
from nlptransfer.errors import ConfigError, ModelError
from nlptransfer.predictor import inference_max_length, load_run_model, run_settings

EXAMPLES = """examples:
  nlptransfer explain --model outputs/sentiment-minilm-full --text "not bad at all"
  nlptransfer explain --model outputs/tc --text "A randomised controlled trial of ..." --html why.html

Token attributions by layer integrated gradients (captum) on the input embeddings, for the predicted
label (or --target). Needs captum: pip install 'nlptransfer[explain]'. Loads like predict (safetensors
only, no model code) unless --allow_pickle true / --trust_remote_code true."""


def layer_integrated_gradients() -> type:
    """captum's `LayerIntegratedGradients`, or a one-line ModelError saying how to install captum."""
    try:
        from captum.attr import LayerIntegratedGradients
    except ImportError as err:
        raise ModelError(
            f"explain needs captum, which is not importable here ({err}); pip install 'nlptransfer[explain]'"
        ) from None
    return LayerIntegratedGradients


def explain_text(
    model, tokenizer, config, text: str, max_length: int, target: str | None = None, steps: int = 50
):
    """(tokens, scores, label, probability): layer integrated gradients on the input embeddings.

    Baseline: the same sequence with every token but [CLS]/[SEP] replaced by the pad token. Scores are
    summed over the embedding dimension and scaled so the largest |score| is 1.
    """
    attribution_method = layer_integrated_gradients()
    import torch

    from nlptransfer.inference import probabilities

    model.eval()
    multilabel = config.problem_type == "multi_label_classification"
    enc = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
    input_ids, attention = enc["input_ids"], enc["attention_mask"]
    special = torch.tensor(
        tokenizer.get_special_tokens_mask(input_ids[0].tolist(), already_has_special_tokens=True),
        dtype=torch.bool,
    )
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    baseline = torch.where(special, input_ids[0], torch.full_like(input_ids[0], pad)).unsqueeze(0)

    def forward(ids, mask):
        return model(input_ids=ids, attention_mask=mask).logits

    with torch.no_grad():
        logits = forward(input_ids, attention)[0]
    probs = probabilities(logits.float().cpu().numpy(), multilabel)
    if target is None:
        index = int(probs.argmax())
    elif target in config.label2id:
        index = int(config.label2id[target])
    else:
        raise ConfigError(f"unknown --target {target!r}; labels: {', '.join(config.label2id)}")
    lig = attribution_method(forward, model.get_input_embeddings())
    attributions = lig.attribute(
        input_ids, baselines=baseline, additional_forward_args=(attention,), target=index, n_steps=steps
    )
    scores = attributions.sum(-1)[0].detach()
    scores = scores / scores.abs().max().clamp_min(1e-12)
    tokens = tokenizer.convert_ids_to_tokens(input_ids[0].tolist())
    return tokens, scores.tolist(), config.id2label[index], float(probs[index])


def explanation_html(tokens: list[str], scores: list[float], label: str, prob: float) -> str:
    """A self-contained HTML snippet: green pushes towards `label`, red away from it."""
    import html

    spans = []
    for tok, s in zip(tokens, scores, strict=True):
        color = f"rgba(0,160,0,{abs(s):.2f})" if s >= 0 else f"rgba(220,0,0,{abs(s):.2f})"
        spans.append(
            f'<span style="background:{color};padding:1px 2px;margin:1px;border-radius:3px" '
            f'title="{s:+.3f}">{html.escape(tok)}</span>'
        )
    return (
        '<div class="nlptransfer-explanation" style="font-family:sans-serif;line-height:2">'
        f"<p>prediction: <b>{html.escape(str(label))}</b> ({prob:.3f}); green supports it, red opposes it "
        "(layer integrated gradients on the input embeddings)</p>\n<p>" + " ".join(spans) + "</p></div>\n"
    )


def cmd_explain(args: argparse.Namespace) -> dict:
    check_positive(args, "steps", "max_length")
    if not args.text.strip():  # nothing to attribute: the scores would be of [CLS] and [SEP] alone
        raise ConfigError('--text is empty; pass the text to explain, e.g. --text "a wonderful, moving film"')
    layer_integrated_gradients()  # no captum: say so before loading the model
    out = check_output(args.html, args.overwrite, (".html", ".htm"))
    model, tokenizer, config = load_run_model(
        args.model, allow_pickle=args.allow_pickle, trust_remote_code=args.trust_remote_code
    )
    max_length, _ = run_settings(Path(args.model))
    length = inference_max_length(model.config, args.max_length, max_length)
    tokens, scores, label, prob = explain_text(
        model, tokenizer, config, args.text, length, args.target, args.steps
    )
    print(f"prediction: {label} ({prob:.3f})   attribution to it, scaled to [-1, 1]:")
    for tok, s in zip(tokens, scores, strict=True):
        bar = ("+" if s >= 0 else "-") * round(abs(s) * 20)
        print(f"  {tok:20s} {s:+.3f} {bar}")
    if out is not None:
        from nlptransfer.runs import write_text_atomic

        write_text_atomic(out, explanation_html(tokens, scores, label, prob), overwrite=args.overwrite)
        print(f"wrote {out}", file=sys.stderr)
    return {"tokens": tokens, "scores": scores, "label": label, "probability": prob}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, type=user_path, metavar="DIR", help="a run's output directory")
    p.add_argument("--text", required=True, help="the text to explain")
    p.add_argument("--target", default=None, help="label to explain (default: the predicted one)")
    p.add_argument("--steps", type=int, default=50, help="integration steps (default: 50)")
    p.add_argument("--max_length", type=int, default=None, help="default: the run's max_length")
    p.add_argument("--html", type=user_path, metavar="FILE", help="also write a colored HTML snippet")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --html file")
    add_loading_flags(p)


EXPLAIN = Subcommand(
    help="token attributions (integrated gradients) for one text",
    examples=EXAMPLES,
    add_arguments=add_arguments,
    run=cmd_explain,
)
