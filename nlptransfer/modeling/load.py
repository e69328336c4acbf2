"""THE one way nlptransfer loads pretrained configs, tokenizers, models and peft adapters.

    config = load_config(name, num_labels=3)
    tokenizer = load_tokenizer(name)
    model = load_model(AutoModelForSequenceClassification, name, config=config)
    model = load_peft_model(adapter_dir, auto_class=AutoModelForSequenceClassification)

Every recipe and every `nlptransfer` subcommand loads through these functions; the rules hold everywhere:

- Names: an embedded alias (`sentence-transformers/all-MiniLM-L6-v2`) resolves to its cached offline copy
  (`resolve`); a local directory or Hub id is used as given. A missing model is one ModelError line naming
  the embedded default.
- Weights: safetensors only unless `allow_pickle`. A local folder whose only weights are pickled
  (*.bin/*.pt/*.pth: unpickling can run arbitrary code) is refused naming --allow_pickle, and
  `use_safetensors=True` is passed. A pickle that torch refuses even then (weights-only unpickling of a
  corrupt or malicious file) is one ModelError line, not a traceback.
- Code: `trust_remote_code` is always passed explicitly (default False), so transformers never asks on stdin.
  A model that needs its own code (an `auto_map` in config.json or tokenizer_config.json, or transformers
  says so) fails in one ModelError line naming `--trust_remote_code true`; when it is on, a warning is logged.
"""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

from nlptransfer import assets
from nlptransfer.config import DEFAULT_MODEL, user_set
from nlptransfer.errors import ConfigError, ModelError, first_line
from nlptransfer.paths import expand_user

logger = logging.getLogger("nlptransfer")

PICKLED = (".bin", ".pt", ".pth")
try:  # a truncated or corrupt *.safetensors file
    from safetensors import SafetensorError
except ImportError:  # pragma: no cover - safetensors ships with transformers
    SafetensorError = OSError
_LOAD_ERRORS = (OSError, ValueError, TypeError, pickle.UnpicklingError, SafetensorError)
_warned: set[str] = set()


def resolve(name_or_path: str) -> str:
    """An embedded model alias -> its cached asset folder (fetched if needed); anything else unchanged.
    Word vectors (glove-6b-50d, domain-vectors) are not a model: one ModelError line naming the recipes
    that build a classifier from them."""
    text = str(name_or_path)
    if assets.word_vectors_key(text) or text.strip().lower() == assets.DOMAIN_VECTORS:
        raise ModelError(
            f"{text!r} names word vectors, not a transformers model: the sentiment and text_classification "
            f"recipes build a word-vector classifier from them (--model_name_or_path {text}); pass a model "
            "folder or Hub id here"
        )
    return assets.resolve_model(text)


def record_portable_base(peft_model) -> None:
    """Set every adapter's `base_model_name_or_path` to `portable_name` of its base before the adapter is
    saved, so `PeftModel.from_pretrained` finds the base from any working directory."""
    for peft_config in peft_model.peft_config.values():
        recorded = peft_config.base_model_name_or_path or peft_model.get_base_model().name_or_path
        if recorded:
            peft_config.base_model_name_or_path = portable_name(recorded)


def portable_name(name_or_path: str) -> str:
    """How a run records the model it started from, so that loading it later does not depend on the working
    directory: an existing local folder -> its absolute path (the embedded alias when it is the cached copy
    of an embedded model); a Hub id or alias -> unchanged."""
    text = str(name_or_path)
    folder = expand_user(text)
    if not folder.is_dir():
        return text
    folder = folder.resolve()
    for alias, key in assets.embedded_models().items():
        try:
            if assets.asset_dir(key).resolve() == folder:
                return alias
        except (OSError, ValueError):
            continue
    return str(folder)


def adapter_base(adapter_dir: str | Path, recorded: str) -> tuple[str, str]:
    """(base model to load, hint for a failure) of the base an adapter's adapter_config.json records.

    A recorded absolute path that does not exist is one ModelError line; a relative one (adapters saved
    before bases were recorded absolute) is read relative to the current directory, with a warning."""
    spec_file = Path(adapter_dir) / "adapter_config.json"
    fix = (
        f"set base_model_name_or_path in {spec_file} to the base model's folder (an absolute path) or its "
        "Hub id"
    )
    try:
        folder = expand_user(
            recorded, what=f"the adapter in {adapter_dir} records base model {recorded!r}", fix=fix
        )
    except ConfigError as err:  # "~name/..." of a user this system does not have
        raise ModelError(str(err)) from None
    if folder.is_absolute():
        if not folder.is_dir():
            raise ModelError(
                f"the adapter in {adapter_dir} was trained on base model {recorded!r}, which does not exist "
                f"here; {fix}"
            )
    elif folder.is_dir():
        logger.warning(
            "adapter %s records its base model as the relative path %r; using %s (from the current "
            "directory): if that is not the base it was trained on, %s",
            adapter_dir,
            recorded,
            folder.resolve(),
            fix,
        )
    return recorded, f"the adapter in {adapter_dir} records base model {recorded!r}; {fix}"


# ----------------------------------------------------------------------------------------------
# checks before transformers is called


def needs_remote_code(path: str | Path) -> bool:
    """A local folder whose config.json or tokenizer_config.json maps Auto classes to its own code."""
    folder = expand_user(path)
    for name in ("config.json", "tokenizer_config.json"):
        try:
            spec = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # absent or unreadable: transformers reports it
        if isinstance(spec, dict) and spec.get("auto_map"):
            return True
    return False


def only_pickled_weights(path: str | Path) -> bool:
    """A local folder with pickled weights (*.bin/*.pt/*.pth) and no *.safetensors."""
    folder = expand_user(path)
    if not folder.is_dir():
        return False
    files = [p.name for p in folder.iterdir() if p.is_file()]
    pickled = any(f.endswith(PICKLED) and "training_args" not in f for f in files)
    return pickled and not any(f.endswith(".safetensors") for f in files)


def _remote_code_refused(name: str) -> ModelError:
    return ModelError(
        f"model {name!r} needs to run its own Python code (custom architecture or tokenizer); nlptransfer "
        "does not run it unless you pass --trust_remote_code true (only for a source you trust)"
    )


def _pickle_refused(name: str) -> ModelError:
    return ModelError(
        f"model {name!r} has only pickled PyTorch weights (pytorch_model.bin), which can run arbitrary code "
        f"when loaded; convert it to safetensors, or pass --allow_pickle true if you trust its source"
    )


def _not_found(name: str, err: Exception, hint: str | None) -> ModelError:
    hint = (
        hint
        or f"use the embedded default --model_name_or_path {DEFAULT_MODEL} or a local directory with config.json"
    )
    return ModelError(
        f"model {name!r} could not be loaded ({type(err).__name__}): it is not a local directory and the "
        f"Hugging Face Hub is unreachable or has no such id; {hint}"
    )


def _prepare(name: str, trust_remote_code: bool, allow_pickle: bool | None = None) -> str:
    """The resolved path, after the remote-code and pickle checks (`allow_pickle=None`: no weights read)."""
    path = resolve(name)
    if trust_remote_code:
        if path not in _warned:
            _warned.add(path)
            logger.warning("trust_remote_code is ON: code from %s may run on this machine", path)
    elif needs_remote_code(path):
        raise _remote_code_refused(name)
    if allow_pickle is False and only_pickled_weights(path):
        raise _pickle_refused(name)
    return path


def _failure(name: str, path: str, err: Exception, what: str, allow_pickle: bool, hint: str | None):
    """The one-line ModelError for an exception transformers/peft/torch raised while loading."""
    text = str(err)
    if "trust_remote_code" in text:
        return _remote_code_refused(name)
    if isinstance(err, pickle.UnpicklingError) or "weights_only" in text or "Weights only load" in text:
        return ModelError(
            f"model {name!r}: torch refused to unpickle its pickled weights ({first_line(err)[:160]}); the "
            "file is corrupt or holds code, not just tensors: use safetensors weights from a trusted source"
        )
    if isinstance(err, SafetensorError) or "deserializing header" in text:
        return ModelError(
            f"model {name!r}: its safetensors weights are truncated or corrupt ({first_line(err)[:160]}); "
            "copy or download the model folder again"
        )
    if isinstance(err, OSError) and not allow_pickle and ".bin" in text:
        return _pickle_refused(name)
    if isinstance(err, OSError) and not expand_user(path).is_dir():
        return _not_found(name, err, hint)
    return ModelError(f"model {name!r} could not be loaded as {what}: {first_line(err)}")


# ----------------------------------------------------------------------------------------------
# loaders


# position embeddings offset by padding_idx + 1 (RoBERTa and its relatives): 514 rows hold 512 tokens
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "longformer", "ernie_m", "mpnet", "data2vec-text")


def position_limit(config) -> int | None:
    """The most tokens `config`'s model takes (its learned position embeddings), or None when unbounded
    (relative positions, e.g. T5)."""
    encoder = getattr(config, "encoder", None)  # a composite config (the pooled classifier's): its encoder's
    if getattr(config, "max_position_embeddings", None) is None and hasattr(
        encoder, "max_position_embeddings"
    ):
        config = encoder
    limit = getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int) or limit <= 0:
        return None
    if getattr(config, "model_type", "") in _OFFSET_POSITIONS:
        pad = getattr(config, "pad_token_id", None)
        limit -= (pad if isinstance(pad, int) and pad >= 0 else 1) + 1
    return limit


def check_max_length(config, max_length: int, flag: str = "--max_length") -> None:
    """One ConfigError line when `max_length` is below 1 or above the model's position limit (which would
    crash on the first long text, mid-training or mid-prediction)."""
    if max_length is None:
        return
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ConfigError(f"{flag} {max_length!r} must be a whole number of at least 1; pass e.g. {flag} 128")
    limit = position_limit(config)
    if limit is not None and max_length > limit:
        name = getattr(config, "_name_or_path", "") or getattr(config, "model_type", "the model")
        raise ConfigError(
            f"{flag} {max_length} is more tokens than model {name!r} takes ({limit} positions); "
            f"pass {flag} {limit} or less"
        )


def fit_max_length(model_args, config, field: str = "max_length") -> int:
    """`model_args.max_length` (or another length `field`, e.g. domain pretraining's `block_size`) checked
    against the model's position limit before anything is written: a value the user set
    (`config.user_set`) above the limit is one ConfigError line; a recipe default above it is lowered to the
    limit (logged once), so a small model runs with the shipped settings. Sets and returns the value, so
    config.yaml records what the run used."""
    limit = position_limit(config)
    value = getattr(model_args, field)
    if field in user_set(model_args) or limit is None or value <= limit:
        check_max_length(config, value, f"--{field}")
        return value
    logger.info("%s %d -> %d: the model takes %d positions", field, value, limit, limit)
    setattr(model_args, field, limit)
    return limit


def load_config(
    name_or_path: str | Path, *, trust_remote_code: bool = False, hint: str | None = None, **overrides
):
    """`AutoConfig` of a model, with `overrides` (num_labels, id2label, problem_type, ...) applied."""
    from transformers import AutoConfig

    name = str(name_or_path)
    path = _prepare(name, trust_remote_code)
    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code, **overrides)
    except _LOAD_ERRORS as err:
        raise _failure(name, path, err, "a config", True, hint) from err


def load_tokenizer(
    name_or_path: str | Path, *, trust_remote_code: bool = False, hint: str | None = None, **kwargs
):
    """`AutoTokenizer` of a model (`kwargs` go to `from_pretrained`). The recipes check --max_length against
    the model (`fit_max_length`) when they build it, before the output directory is touched."""
    from transformers import AutoTokenizer

    name = str(name_or_path)
    path = _prepare(name, trust_remote_code)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code, **kwargs)
    except _LOAD_ERRORS as err:
        raise _failure(name, path, err, "a tokenizer", True, hint) from err
    check_tokenizer(tokenizer, name)
    return tokenizer


TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model")


def check_tokenizer(tokenizer, name: str) -> None:
    """Refuse a tokenizer with no vocabulary beyond its special tokens (transformers 5 builds one, silently,
    for a model folder without tokenizer files: every word would become [UNK])."""
    try:
        vocab = tokenizer.get_vocab()
    except (AttributeError, NotImplementedError, TypeError, ValueError):
        return  # a tokenizer without a vocabulary listing (byte-level etc.): nothing to judge
    special = set(getattr(tokenizer, "all_special_tokens", []) or [])
    if vocab and len(set(vocab) - special) > 0:
        return
    folder = expand_user(name)
    where = f"{name!r} has no tokenizer files ({', '.join(TOKENIZER_FILES[:4])}, ...)"
    if not folder.is_dir():
        where = f"the tokenizer of {name!r} has an empty vocabulary"
    raise ModelError(
        f"{where}: its tokenizer would map every word to the unknown token; copy the tokenizer files of the "
        "model it was trained from into the folder (tokenizer.save_pretrained(folder))"
    )


def load_model(
    auto_class,
    name_or_path: str | Path,
    *,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    from_scratch: bool = False,
    config=None,
    hint: str | None = None,
    **kwargs,
):
    """`auto_class.from_pretrained(...)` (e.g. `AutoModelForSequenceClassification`) under the rules above.

    `config`: a config to use instead of the checkpoint's (from `load_config`, with overrides);
    `from_scratch`: the same architecture with random weights (`auto_class.from_config`, no weights read);
    `kwargs` go to `from_pretrained` (e.g. `output_loading_info=True`).
    """
    name = str(name_or_path)
    what = getattr(auto_class, "__name__", str(auto_class))
    if from_scratch:
        config = config or load_config(name, trust_remote_code=trust_remote_code, hint=hint)
        return auto_class.from_config(config, trust_remote_code=trust_remote_code)
    path = _prepare(name, trust_remote_code, allow_pickle)
    try:
        return auto_class.from_pretrained(
            path,
            config=config,
            trust_remote_code=trust_remote_code,
            # safetensors only: unpickling a .bin checkpoint can execute arbitrary code.
            use_safetensors=None if allow_pickle else True,
            **kwargs,
        )
    except _LOAD_ERRORS as err:
        raise _failure(name, path, err, what, allow_pickle, hint) from err


def load_peft_model(
    adapter_dir: str | Path,
    *,
    base_model=None,
    auto_class=None,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    config=None,
    base_overrides: dict | None = None,
    task_type: str | None = None,
    **kwargs,
):
    """A peft adapter folder on its base model (`PeftModel.from_pretrained`; the task type picks the class).

    `base_model`: an already loaded base; otherwise `auto_class` loads the base named in the adapter's
    `adapter_config.json` through `load_model` (same rules; `config` for its labels, or `base_overrides`
    applied to the base's own config). `task_type` (e.g. "SEQ_CLS"): refuse an adapter of another task.
    `kwargs` go to `PeftModel.from_pretrained` (e.g. `is_trainable=True`).
    """
    from peft import PeftModel

    from nlptransfer.modeling.adapters import peft_wrapping

    folder = Path(adapter_dir)
    name = str(adapter_dir)
    try:
        spec = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelError(
            f"{name!r} holds no readable adapter_config.json ({first_line(err)}); pass a peft adapter folder"
        ) from err
    if task_type is not None and (spec.get("task_type") if isinstance(spec, dict) else None) != task_type:
        found = spec.get("task_type") if isinstance(spec, dict) else None
        raise ModelError(
            f"{folder} is not a trained classifier: its adapter_config.json has task_type {found!r}, not "
            f"{task_type}; pass the output directory of a classification run"
        )
    if not allow_pickle and only_pickled_weights(folder):
        raise _pickle_refused(name)
    if base_model is None:
        base = spec.get("base_model_name_or_path")
        if not base or auto_class is None:
            raise ModelError(f"adapter {name!r} names no base model; load the base and pass base_model")
        base, hint = adapter_base(folder, base)
        pooled = _pooled_head_config(folder) if config is None else None
        if pooled is not None:  # trained on the pooled architecture: the encoder + that head around it
            base_model = _pooled_base(pooled, base, allow_pickle, trust_remote_code, hint)
        else:
            if config is None and base_overrides:
                config = load_config(base, trust_remote_code=trust_remote_code, hint=hint, **base_overrides)
            base_model = load_model(
                auto_class,
                base,
                allow_pickle=allow_pickle,
                trust_remote_code=trust_remote_code,
                config=config,
                hint=hint,
            )
    try:
        with peft_wrapping():
            return PeftModel.from_pretrained(base_model, folder, **kwargs)
    except _LOAD_ERRORS as err:
        raise _failure(name, name, err, "a peft adapter", allow_pickle, None) from err
    except RuntimeError as err:  # load_state_dict: the adapter's shapes are not the base's
        if "size mismatch" not in str(err):
            raise
        recorded = spec.get("base_model_name_or_path") if isinstance(spec, dict) else None
        base = recorded or getattr(base_model, "name_or_path", None) or "the base model"
        raise ModelError(
            f"the adapter in {name} does not fit base model {base!r} (size mismatch: a model of another "
            f"size); point base_model_name_or_path in {folder / 'adapter_config.json'} at the model it was "
            "trained on"
        ) from err


def _pooled_head_config(adapter_dir: Path):
    """The `nlptransfer_pooled` config saved beside an adapter (a --pooling cls/mean/max classifier), or None."""
    try:
        spec = json.loads((adapter_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    from nlptransfer.pooled import MODEL_TYPE

    if not isinstance(spec, dict) or spec.get("model_type") != MODEL_TYPE:
        return None
    return load_config(adapter_dir)


def _pooled_base(config, base: str, allow_pickle: bool, trust_remote_code: bool, hint: str):
    """The adapter's base as the pooled classifier it was trained as: the pretrained encoder `base` (any
    checkpoint naming) under a new head of `config`'s labels and pooling (the adapter restores the head)."""
    from transformers import AutoModel

    from nlptransfer.modeling.pooling import pooled_classifier

    encoder = load_model(
        AutoModel, base, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code, hint=hint
    )
    labels = {k: getattr(config, k) for k in ("num_labels", "id2label", "label2id", "problem_type")}
    return pooled_classifier(encoder, config.pooling, **labels)
