"""Training settings that transformers, torch's DataLoader or torch.compile accept when parsed but reject
only once the run has started (with a traceback): checked while parsing, one ConfigError line each.
`RunArguments.__post_init__` (nlptransfer.config) calls `check_training_settings`."""

from __future__ import annotations

from pathlib import Path

from nlptransfer.errors import ConfigError
from nlptransfer.tracking import check_tracking


def unknown_metric(metric: str, metrics: dict) -> ConfigError:
    """The one line for a --metric_for_best_model that the evaluation did not report (bare name or eval_ key),
    naming the validation metrics it did report; the tie-break callback and the hyperparameter search raise it
    before the Trainer's KeyError."""
    shown = ", ".join(k.removeprefix("eval_") for k in metrics if k.startswith("eval_"))
    return ConfigError(
        f"--metric_for_best_model {metric.removeprefix('eval_')} is not a validation metric of this run; "
        f"use one of {shown}"
    )


def check_training_settings(args) -> None:
    """Every check below on a `TrainingArguments` (report_to, dataloader, debug, optimizer, torch.compile,
    a seq2seq generation_config)."""
    from accelerate.utils import TorchDynamoPlugin
    from transformers import Seq2SeqTrainer
    from transformers.integrations import get_available_reporting_integrations

    check_tracking(args.report_to)  # tensorboard, mlflow, trackio: name the extra to install
    installed = get_available_reporting_integrations()
    missing = [name for name in args.report_to if name not in installed]
    if missing:  # the Trainer would fail with a traceback once the run has started
        raise ConfigError(
            f"report_to {', '.join(missing)}: not installed here (installed: {', '.join(installed) or 'none'}); "
            "install it or pass --report_to none"
        )
    # What torch's DataLoader and the Trainer's optimizer set-up would only reject mid-run, with a traceback.
    if args.dataloader_num_workers < 0:
        raise ConfigError(
            f"dataloader_num_workers={args.dataloader_num_workers} must be >= 0 (0 = load in this process)"
        )
    if args.dataloader_persistent_workers and args.dataloader_num_workers == 0:
        raise ConfigError(
            "--dataloader_persistent_workers true needs worker processes; pass --dataloader_num_workers 1 "
            "or more, or drop it"
        )
    if args.debug:  # DebugUnderflowOverflow hooks crash on bool tensors; TPU metrics need a TPU
        raise ConfigError(
            f"TrainingArguments' debug={','.join(getattr(d, 'value', str(d)) for d in args.debug)} is not "
            "supported; remove it (--debug alone on the command line shows the traceback of an error)"
        )
    check_optimizer(args)
    check_scheduler(args)
    metric = args.metric_for_best_model
    # "" (or "eval_") names no metric: the Trainer would look up "eval_" after the first evaluation
    if metric is not None and not str(metric).removeprefix("eval_").strip():
        raise ConfigError(
            f"--metric_for_best_model {metric!r} names no metric; pass one (e.g. f1_macro, or loss) or leave it unset"
        )
    if args.save_strategy == "best" and args.metric_for_best_model is None:  # the Trainer's own check
        raise ConfigError("--save_strategy best needs --metric_for_best_model (e.g. f1_macro, or loss)")
    checkpoint = args.resume_from_checkpoint
    if checkpoint and not Path(checkpoint).is_dir():  # the Trainer looked for it only when training
        raise ConfigError(
            f"resume_from_checkpoint={checkpoint!r} is not a checkpoint folder; pass a checkpoint-* folder "
            "or use --resume true on the interrupted run's output_dir"
        )
    if args.torch_compile_mode is not None:  # listed by torch._inductor (documented by torch.compile)
        from torch import _inductor

        modes = list(_inductor.list_mode_options())  # torch.compile rejects others mid-run
        if args.torch_compile_mode not in modes:
            raise ConfigError(
                f"torch_compile_mode={args.torch_compile_mode!r} is not a torch.compile mode; choose one of "
                f"{', '.join(modes)}"
            )
    if args.torch_compile_backend is not None:  # accelerate reads it only when the Trainer starts
        try:
            TorchDynamoPlugin(backend=args.torch_compile_backend, mode=args.torch_compile_mode)
        except Exception as err:
            raise ConfigError(
                f"torch_compile_backend={args.torch_compile_backend!r} is not a torch.compile backend "
                "(e.g. --torch_compile_backend inductor)"
            ) from err
    generation_config = getattr(args, "generation_config", None)  # Seq2SeqTrainingArguments
    if isinstance(generation_config, str | Path):
        try:
            Seq2SeqTrainer.load_generation_config(generation_config)
        except Exception as err:
            raise ConfigError(
                f"generation_config={str(generation_config)!r} is not a generation config file, folder "
                "or Hub id that can be loaded here; fix the path or leave it unset"
            ) from err


def check_optimizer(args) -> None:
    """`--optim` and `--optim_args` as the Trainer will read them (its own parser), so that a malformed
    `--optim_args` or an optimizer whose package is missing fails in one line before any work."""
    try:
        from transformers import Trainer

        Trainer.get_optimizer_cls_and_kwargs(args)
    except Exception as err:
        message = " ".join(str(err).split()) or type(err).__name__
        if "pass a model" in message or "pass a `model`" in message:
            return  # every other check passed; only the model (given at training time) was missing
        optim = getattr(args.optim, "value", args.optim)
        given = f"--optim {optim}" + (f" --optim_args {args.optim_args!r}" if args.optim_args else "")
        hint = " (--optim_args look like key=value,key=value)" if args.optim_args else ""
        raise ConfigError(f"{given} cannot be used: {message}{hint}") from err


def check_scheduler(args) -> None:
    """Adam's betas/epsilon and `--lr_scheduler_kwargs`, which torch and the scheduler factory reject only
    when the optimizer and scheduler are built, after the run has started."""
    for name in ("adam_beta1", "adam_beta2"):
        value = getattr(args, name)
        if not 0.0 <= value < 1.0:
            raise ConfigError(
                f"{name}={value} must be in [0, 1) (defaults: --adam_beta1 0.9 --adam_beta2 0.999)"
            )
    if args.adam_epsilon < 0:
        raise ConfigError(f"adam_epsilon={args.adam_epsilon} must be >= 0 (default 1e-8)")
    kwargs = args.lr_scheduler_kwargs
    if kwargs is not None and not isinstance(kwargs, dict):
        raise ConfigError(
            f"lr_scheduler_kwargs={kwargs!r} must be a JSON object of the scheduler's arguments, e.g. "
            "--lr_scheduler_kwargs '{\"num_cycles\": 2}', or left unset"
        )


def check_eval_batches(args, rows: int, what: str) -> None:
    """With --dataloader_drop_last an evaluation split smaller than one batch gives no batch at all (no
    eval_loss): one line before the run starts instead of a KeyError after training."""
    if args.dataloader_drop_last and rows < args.per_device_eval_batch_size:
        raise ConfigError(
            f"--dataloader_drop_last true drops every batch of the {rows} {what} (batch size "
            f"{args.per_device_eval_batch_size}); lower --per_device_eval_batch_size to {max(rows, 1)} or drop "
            "--dataloader_drop_last"
        )
