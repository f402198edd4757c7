"""The training loop: `train_with_selection` runs optimizer steps, evaluates on dev every `eval_steps`, keeps the
best weights, stops early, and checkpoints; `summarize` and `save_final` write what a run leaves behind.

Everything distributed (DDP, mixed precision, gradient accumulation) is accelerate's; checkpoint files are
`checkpoints`' business, batches `features`'.
"""

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from ..export.remote_code import remove_remote_code_fields
from .checkpoints import TrainingState, load_checkpoint, run_arguments, save_checkpoint
from .features import INDEX_KEY, step_seed
from .training_args import RESULTS_FILE, TrainingArguments, global_batch_size


logger = logging.getLogger(__name__)


def train_with_selection(
    accelerator: Accelerator,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    train_dataloader: Iterable[dict],
    evaluate: Callable[[torch.nn.Module], dict],
    args: TrainingArguments,
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    prepare_batch: Callable[[dict, int], dict] | None = None,
    selection_keys: Sequence[str] = ("macro_f1", "strict_accuracy"),
    script_args: object | None = None,
) -> TrainingState:
    """Train for up to `max_steps` optimizer steps, evaluating every `eval_steps`; keep the best dev model.

    The best weights (by `selection_keys`, compared in order: FiveFine selects by dev macro-F1, ties broken by
    strict accuracy) are loaded into the model at the end. Stops early once `step >= min_steps` and the dev score
    has not improved for more than `patience` steps. `prepare_batch(batch, step)` may add or drop inputs (MLM
    corruption, NWP every n steps). Every process evaluates the same gathered predictions, so all stop together.

    Each batch's random draws (dropout, MLM corruption) come from a seed of its own (`step_seed`: run seed, epoch,
    batch, process), so evaluation, checkpointing and the data loader's prefetch cannot shift them, and a run
    resumed from any checkpoint is bit-identical to one that was never interrupted.

    Checkpoints record `args` and the script's own argument dataclass `script_args` (`run_arguments`); resuming
    one with other values is refused unless `--ignore_resume_mismatch`.
    """
    has_scheduler = lr_scheduler is not None
    arguments = run_arguments(accelerator, args, *([] if script_args is None else [script_args]))
    state, best_weights, resumed_from = TrainingState(), None, None
    if args.resume_from_checkpoint:
        state, best_weights, resumed_from = load_checkpoint(
            args.resume_from_checkpoint,
            args.output_dir,
            accelerator,
            scheduler=has_scheduler,
            arguments=arguments,
            ignore_mismatch=args.ignore_resume_mismatch,
        )
    progress = tqdm(
        total=args.max_steps, initial=state.step, desc="train", disable=not accelerator.is_local_main_process
    )

    def record_evaluation(best_weights: dict | None) -> dict | None:
        """Evaluate on dev, log it in the history, and keep a copy of the weights when they are the best so far."""
        metrics = evaluate(model)
        # Mean over all processes' batches (each process only sees its shard): one collective per eval.
        window = torch.tensor([state.window_loss, state.window_batches], device=accelerator.device)
        window_loss, window_batches = accelerator.reduce(window, reduction="sum").tolist()
        train_loss = window_loss / window_batches if window_batches else None  # None: before the first step
        record = {"step": state.step, "train_loss": train_loss, **metrics}
        state.window_loss, state.window_batches = 0.0, 0
        state.history.append(record)
        key = [float(metrics[name]) for name in selection_keys]
        if state.best_key is None or key > state.best_key:
            state.best_key, state.best_step, state.best_metrics = key, state.step, metrics
            weights = accelerator.unwrap_model(model).state_dict()
            best_weights = {name: tensor.detach().to("cpu", copy=True) for name, tensor in weights.items()}
        shown = {name: f"{metrics[name]:.4f}" for name in selection_keys}
        progress.set_postfix(loss="-" if train_loss is None else f"{train_loss:.4f}", **shown)
        if args.with_tracking:
            accelerator.log({k: v for k, v in record.items() if isinstance(v, (int, float))}, step=state.step)
        return best_weights

    if args.eval_at_start and state.step == 0 and not state.history:
        # The starting model competes too: when fine-tuning only loses the prior, selection keeps the prior.
        best_weights = record_evaluation(best_weights)
    model.train()
    done = state.step >= args.max_steps or state.stopped_early
    while not done:
        if hasattr(train_dataloader, "set_epoch"):
            train_dataloader.set_epoch(state.epoch)
        batches = train_dataloader
        if state.batches_in_epoch:  # resumed mid-epoch: the same data order, minus the batches already seen
            batches = accelerator.skip_first_batches(train_dataloader, state.batches_in_epoch)
        step_started = time.perf_counter()
        for batch in batches:
            batch.pop(INDEX_KEY, None)
            state.train_examples += len(batch["input_ids"])
            set_seed(step_seed(args.seed, state.epoch, state.batches_in_epoch), device_specific=True)
            if prepare_batch is not None:
                batch = prepare_batch(batch, state.step)
            loss = _train_on_batch(accelerator, model, optimizer, lr_scheduler, batch, args.max_grad_norm)
            state.batches_in_epoch += 1
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"The training loss is {loss} at step {state.step}; lower --learning_rate or check the data."
                )
            state.window_loss += loss
            state.window_batches += 1
            if not accelerator.sync_gradients:  # inside a gradient accumulation window: not an optimizer step yet
                continue
            state.step += 1
            state.train_seconds += time.perf_counter() - step_started
            progress.update(1)
            if state.step % args.eval_steps == 0 or state.step >= args.max_steps:
                best_weights = record_evaluation(best_weights)
                stale = state.step - state.best_step
                if args.patience is not None and state.step >= args.min_steps and stale > args.patience:
                    state.stopped_early = True
                    logger.info(f"Early stop at step {state.step}: no dev improvement for {stale} steps.")
            if args.checkpointing_steps and state.step % args.checkpointing_steps == 0:
                save_checkpoint(
                    accelerator,
                    state,
                    best_weights,
                    args.output_dir,
                    args.checkpoints_total_limit,
                    keep=resumed_from,
                    scheduler=has_scheduler,
                    arguments=arguments,
                )
            if state.stopped_early or state.step >= args.max_steps:
                done = True
                break
            step_started = time.perf_counter()
        else:
            state.epoch += 1
            state.batches_in_epoch = 0
    progress.close()
    if best_weights is not None:
        accelerator.unwrap_model(model).load_state_dict(best_weights)
        logger.info(f"Loaded the best dev model (step {state.best_step}: {state.best_metrics}).")
    return state


def _train_on_batch(
    accelerator: Accelerator,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    batch: dict,
    max_grad_norm: float | None,
) -> float:
    """Forward and backward on one batch and an optimizer step (accelerate skips it inside an accumulation window;
    gradients are clipped only on a real step). Returns the batch loss."""
    with accelerator.accumulate(model):
        loss = model(**batch).loss
        accelerator.backward(loss)
        if accelerator.sync_gradients and max_grad_norm is not None:
            accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        if lr_scheduler is not None:
            lr_scheduler.step()
        optimizer.zero_grad()
    return loss.detach().float().item()


def summarize(
    results: dict[str, dict], state: TrainingState, accelerator: Accelerator, args: TrainingArguments, **extra
) -> dict:
    """The `all_results.json` content: `<split>_<metric>` scores, the run's course and its throughput."""
    return {
        **{f"{split}_{key}": value for split, scores in results.items() for key, value in scores.items()},
        "best_step": state.best_step,
        "steps": state.step,
        "stopped_early": state.stopped_early,
        **extra,
        "num_processes": accelerator.num_processes,
        "global_batch_size": global_batch_size(accelerator, args),
        "train_samples_per_second": state.samples_per_second(accelerator.num_processes),
        "history": state.history,
    }


def save_final(
    accelerator: Accelerator,
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    output_dir: str,
    results: dict,
) -> None:
    """`save_pretrained` model and tokenizer, and write `all_results.json`, from the main process.

    A model that started from a Hub export loses the export's remote-code fields: the new folder has no code files.
    """
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    remove_remote_code_fields(unwrapped.config)
    unwrapped.save_pretrained(output_dir, is_main_process=accelerator.is_main_process)
    if accelerator.is_main_process:
        tokenizer.save_pretrained(output_dir)
        Path(output_dir, RESULTS_FILE).write_text(json.dumps(results, indent=2))
    accelerator.wait_for_everyone()


__all__ = ["save_final", "summarize", "train_with_selection"]
