"""The training building blocks the example scripts share (on accelerate), one module per step of a run:

- `training_args`: `TrainingArguments`, `create_accelerator`, logging, and the checks that fail before any data is
  loaded (launcher, `--model_name_or_path`, `--output_dir`);
- `features`: mention records -> templated features -> padded batches (`DataCollatorForEntityTyping`), and
  `BatchExtension`, the hook through which a family adds training inputs of its own;
- `optimization`: AdamW groups, the learning-rate schedule, freezing heads an objective leaves idle;
- `training_loop`: `train_with_selection` (dev selection, early stopping, checkpoints), `summarize`, `save_final`;
- `checkpoints`: `TrainingState`, atomic saves, checking, resolving (`latest`) and rotating checkpoints;
- `prediction`: probabilities or decided labels for every row, gathered from all processes in order;
- `type_sampling`: a batch's target types plus sampled negatives, for families that encode phrases with the encoder;
- `weight_interpolation`: the start and the fine-tuned model mixed in weight space, the mix chosen on dev.
"""

from .checkpoints import CheckpointError, TrainingState, checkpoint_problem
from .features import (
    INFERENCE_KEYS,
    BatchExtension,
    DataCollatorForEntityTyping,
    featurize_mentions,
    featurize_split,
    step_seed,
)
from .optimization import build_optimizer, build_scheduler, freeze_unused_heads
from .prediction import gather_predictions, predict_labels, predict_logits, predict_probabilities
from .training_args import (
    TrainingArguments,
    check_model_name_or_path,
    check_world_size,
    configure_logging,
    create_accelerator,
    default_encoder,
    global_batch_size,
    launch_command_num_processes,
    prepare_output_dir,
)
from .training_loop import save_final, summarize, train_with_selection
from .type_bank import TypeBank
from .type_sampling import sample_type_columns, target_columns
from .weight_interpolation import INTERPOLATION_GRID, choose_interpolation, snapshot


__all__ = [
    "INFERENCE_KEYS",
    "BatchExtension",
    "CheckpointError",
    "DataCollatorForEntityTyping",
    "TrainingArguments",
    "TrainingState",
    "TypeBank",
    "INTERPOLATION_GRID",
    "build_optimizer",
    "build_scheduler",
    "check_model_name_or_path",
    "check_world_size",
    "checkpoint_problem",
    "configure_logging",
    "create_accelerator",
    "default_encoder",
    "featurize_mentions",
    "featurize_split",
    "freeze_unused_heads",
    "gather_predictions",
    "global_batch_size",
    "launch_command_num_processes",
    "predict_labels",
    "predict_logits",
    "predict_probabilities",
    "prepare_output_dir",
    "choose_interpolation",
    "sample_type_columns",
    "snapshot",
    "save_final",
    "step_seed",
    "summarize",
    "target_columns",
    "train_with_selection",
]
