"""Every strategy of `nlptransfer.strategies.TABLE` on the tiny BERT: what trains, save -> reload gives
identical logits (adapter-only through peft's loaders, merged through plain transformers, and through
`nlptransfer predict`'s loader), and what the table says about merging is what save_classifier does.
(That every strategy *learns* is tests/test_learning.py; bad --peft_config input is in test_bad_inputs.py.)
"""

from __future__ import annotations

import pytest
import torch
from peft import AutoPeftModelForSequenceClassification, PeftModel
from tiny import toy_word_tokenizer
from transformers import AutoModelForSeq2SeqLM, AutoModelForSequenceClassification, AutoTokenizer, pipeline

from nlptransfer.config import ModelArguments, TransferArguments
from nlptransfer.errors import ConfigError, ModelError
from nlptransfer.modeling import (
    apply_strategy,
    build_classifier,
    check_targets,
    count_parameters,
    save_classifier,
)
from nlptransfer.modeling.seq2seq import build_marian
from nlptransfer.predictor import load_run_model
from nlptransfer.strategies import STRATEGIES, TABLE
from nlptransfer.trainers.translation.trainer import apply_seq2seq_strategy, check_seq2seq_strategy

NAMES = ["negative", "positive"]
TEXTS = ["good film the plot", "bad boring movie", "great actor but dull scene"]
PEFT_FILE = "peft_type: HRA\nr: 2\ntarget_modules: [query, value]\n"  # a method we do not name
APPLICABLE = [s for s in STRATEGIES if s != "prefix_tuning"]  # see the prefix_tuning test


def build(model_dir, strategy, tmp_path, **options):
    torch.manual_seed(0)
    if strategy == "peft":
        (tmp_path / "peft.yaml").write_text(options.pop("peft_text", PEFT_FILE), encoding="utf-8")
        options["peft_config"] = str(tmp_path / "peft.yaml")
    transfer = TransferArguments(strategy=strategy, num_virtual_tokens=4, **options)
    return build_classifier(ModelArguments(str(model_dir)), transfer, NAMES)


def logits(model, tok):
    model.eval()
    batch = tok(TEXTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**batch).logits


def trained(model):
    """As if trained: every trainable tensor moved away from its initialisation (LoRA's B starts at 0,
    which would make merged == unmerged trivially)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.2)
    return model


def test_the_table_names_every_strategy_once_with_its_description():
    assert STRATEGIES[:3] == ("full", "frozen", "bitfit")
    for name in (
        "lora",
        "dora",
        "ia3",
        "loha",
        "lokr",
        "vera",
        "prefix_tuning",
        "prompt_tuning",
        "ln_tuning",
    ):
        assert TABLE[name].peft_type, name
    assert {s for s in STRATEGIES if TABLE[s].merges} == {"lora", "dora", "ia3", "loha", "lokr", "vera"}
    assert TransferArguments.__dataclass_fields__["strategy"].metadata["choices"] == list(STRATEGIES)
    help_text = TransferArguments.__dataclass_fields__["strategy"].metadata["help"]
    assert all(f"{s} (" in help_text for s in STRATEGIES)


def test_nlptransfer_list_shows_what_trains_and_whether_it_merges(capsys):
    from nlptransfer.cli.commands import cmd_list

    cmd_list(None)
    out = capsys.readouterr().out
    for name, row in TABLE.items():
        assert f"  {name:14s} {row.describe()}" in out
    assert "every bias term" in out and "merges into a plain model" in out and "cannot merge" in out


@pytest.mark.parametrize("strategy", APPLICABLE)
def test_trainable_parameters_are_what_the_strategy_trains(strategy, model_dir, tmp_path):
    model = build(model_dir, strategy, tmp_path)
    trainable, total = count_parameters(model)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    head = {n for n in names if "classifier" in n}
    assert head, "the new head always trains"
    if strategy == "full":
        assert trainable == total
        return
    assert trainable < 0.2 * total, (strategy, trainable, total)
    rest = names - head
    if strategy == "frozen":
        assert not rest
    elif strategy == "bitfit":
        assert rest and all(n.endswith(".bias") for n in rest)
        backbone_biases = [n for n, _ in model.named_parameters() if n.endswith(".bias") and n not in head]
        assert rest == set(backbone_biases)
    else:
        assert rest, f"{strategy}: only the head trains"
        assert not any(n.endswith(("query.weight", "query.base_layer.weight")) for n in rest)
        markers = {
            "lora": "lora_",
            "dora": "lora_magnitude_vector",
            "ia3": "ia3_l",
            "loha": "hada_",
            "lokr": "lokr_",
            "vera": "vera_lambda",
            "prompt_tuning": "prompt_encoder",
            "ln_tuning": "ln_tuning_layers",
            "peft": "hra_",
        }
        assert any(markers[strategy] in n for n in rest), sorted(rest)[:4]


@pytest.mark.parametrize("strategy", APPLICABLE)
def test_save_then_reload_gives_identical_logits(strategy, model_dir, tmp_path):
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = trained(build(model_dir, strategy, tmp_path))
    expected = logits(model, tok)
    out = tmp_path / "out"
    save_classifier(model, tok, out)
    row = TABLE[strategy]
    if row.peft_type or strategy == "peft":
        # adapter-only, with the head, through peft's own loaders
        base = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
        reloaded = PeftModel.from_pretrained(base, out / "adapter")
        assert torch.allclose(logits(reloaded, tok), expected, atol=1e-6)
        auto = AutoPeftModelForSequenceClassification.from_pretrained(out / "adapter", num_labels=2)
        assert torch.allclose(logits(auto, tok), expected, atol=1e-6)
    adapter_at_top = bool(row.peft_type or strategy == "peft") and not row.merges
    assert (out / "adapter_config.json").is_file() == adapter_at_top
    if not (out / "adapter_config.json").is_file():  # a plain transformers model: merged, or never peft
        plain = AutoModelForSequenceClassification.from_pretrained(out)
        assert torch.allclose(logits(plain, tok), expected, atol=1e-5)
        clf = pipeline("text-classification", model=str(out))
        assert clf(TEXTS[0])[0]["label"] == NAMES[int(expected[0].argmax())]
    loaded, _, _ = load_run_model(out)  # nlptransfer predict loads every kind
    assert torch.allclose(logits(loaded, tok), expected, atol=1e-5)


def test_strategy_peft_merges_when_its_method_can(model_dir, tmp_path):
    tok = AutoTokenizer.from_pretrained(model_dir)
    text = "peft_type: lora\nr: 2\nlora_alpha: 4\ntarget_modules: [query, key]\n"
    model = trained(build(model_dir, "peft", tmp_path, peft_text=text))
    assert model.peft_config["default"].task_type == "SEQ_CLS"  # ours, whatever the file says
    expected = logits(model, tok)
    save_classifier(model, tok, tmp_path / "out")
    assert not (tmp_path / "out" / "adapter_config.json").exists()
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out")
    assert torch.allclose(logits(plain, tok), expected, atol=1e-5)


def test_merge_adapters_false_keeps_the_adapter_at_the_top(model_dir, tmp_path):
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = trained(build(model_dir, "dora", tmp_path))
    expected = logits(model, tok)
    save_classifier(model, tok, tmp_path / "out", merge_adapters=False)
    assert (tmp_path / "out" / "adapter_config.json").is_file()
    loaded, _, _ = load_run_model(tmp_path / "out")
    assert torch.allclose(logits(loaded, tok), expected, atol=1e-6)


def test_prefix_tuning_is_refused_at_build_time_on_a_classifier_that_cannot_take_it(model_dir, tmp_path):
    with pytest.raises(ModelError, match="prefix_tuning cannot be applied to BertForSequenceClassification"):
        build(model_dir, "prefix_tuning", tmp_path)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("peft_type: NOPE\n", "unknown peft_type 'NOPE'; choose one of"),
        ("r: 4\n", "must hold a mapping with a peft_type"),
        ("peft_type: LORA\nrank: 4\n", "invalid LORA config"),
        ("peft_type: [1,\n", "not readable YAML/JSON"),
    ],
)
def test_a_bad_peft_config_file_is_a_config_error(text, fragment, model_dir, tmp_path):
    with pytest.raises(ConfigError, match=fragment):
        build(model_dir, "peft", tmp_path, peft_text=text)


def test_peft_config_and_strategy_peft_come_together():
    with pytest.raises(ConfigError, match="needs --peft_config"):
        TransferArguments(strategy="peft")
    with pytest.raises(ConfigError, match="applies to --strategy peft"):
        TransferArguments(strategy="lora", peft_config="peft.yaml")


# ------------------------------------------------------------------------------ seq2seq (translation)

SEQ2SEQ = [s for s in STRATEGIES if TABLE[s].seq2seq]


def test_translation_takes_full_and_the_merging_methods_and_refuses_the_rest_in_one_line():
    assert SEQ2SEQ == ["full", "lora", "dora", "ia3", "loha", "lokr", "vera"]
    for strategy in set(STRATEGIES) - set(SEQ2SEQ) - {"peft"}:
        with pytest.raises(
            ConfigError, match=f"strategy '{strategy}' does not apply to translation; use one of"
        ):
            check_seq2seq_strategy(TransferArguments(strategy=strategy))


@pytest.mark.parametrize("strategy", SEQ2SEQ[1:])
def test_a_seq2seq_adapter_merges_into_a_plain_model_with_identical_logits(strategy, tmp_path):
    tok = toy_word_tokenizer()
    torch.manual_seed(0)
    model = build_marian(tok, d_model=32, layers=1, heads=2, ffn_dim=64, max_positions=32, dropout=0.0)
    model = trained(
        apply_seq2seq_strategy(
            model, TransferArguments(strategy=strategy, target_modules=["q_proj", "v_proj"])
        )
    )
    batch = tok(["a b c", "d e"], text_target=["a b c", "d e"], return_tensors="pt", padding=True)
    model.eval()
    with torch.no_grad():
        expected = model(**batch).logits
    save_classifier(model, tok, tmp_path)
    plain = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.allclose(plain(**batch).logits, expected, atol=1e-5)


def test_bitfit_on_a_backbone_without_bias_terms_is_one_model_error(model_dir):
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    with torch.no_grad():
        for module in model.bert.modules():
            if getattr(module, "bias", None) is not None:
                module.bias = None  # as in Llama-style models: no bias anywhere in the backbone
    with pytest.raises(
        ModelError, match="bitfit cannot be applied to BertForSequenceClassification: its backbone"
    ):
        apply_strategy(model, TransferArguments(strategy="bitfit"))


def test_a_target_module_typo_is_refused_even_when_another_target_matches(model_dir):
    """peft applies a list if any entry matches; a typo would silently leave its layers untouched."""
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    with pytest.raises(
        ModelError, match="target modules valeu not found in the model; pick --target_modules"
    ):
        apply_strategy(model, TransferArguments(strategy="lora", target_modules=["query", "valeu"]))
    check_targets(model, TransferArguments(strategy="lora", target_modules=["query", "value"]))  # fine
    check_targets(model, TransferArguments(strategy="bitfit"))  # no peft: nothing to check
