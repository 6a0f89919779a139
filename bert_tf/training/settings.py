"""What a Trainer is built with (TrainerSettings) and what one ``train`` call runs (LoopSettings)."""
import dataclasses
from typing import Optional

from bert_tf.errors import ParameterError
from bert_tf.training.precision import check_precision

NAN_POLICIES = ("stop", "skip_batch")


@dataclasses.dataclass(frozen=True)
class TrainerSettings:
    """How every step runs and how often the loop logs and saves; checked when made.

    ``global_batch_size`` is the batch of one step over all replicas. With
    ``gradient_accumulation_steps`` k > 1 each optimizer step sums the all-reduced gradients of k
    such batches and applies their mean once: the update of one batch k times larger, in the
    memory of one batch. ``clip_norm`` 0 turns global-norm clipping off; ``nan_policy`` is
    ``stop`` (raise, keeping the last good checkpoint) or ``skip_batch`` (count and skip the update).
    """
    global_batch_size: int
    mixed_precision: str = "no"
    jit_compile: bool = False
    steps_per_execution: int = 1
    save_checkpoints_steps: int = 1000
    log_steps: int = 100
    max_checkpoints: int = 3
    clip_norm: float = 1.0
    nan_policy: str = "stop"
    gradient_accumulation_steps: int = 1

    def __post_init__(self):
        if self.gradient_accumulation_steps < 1:
            raise ParameterError(f"gradient_accumulation_steps={self.gradient_accumulation_steps} must be at least 1",
                                 "gradient_accumulation_steps")
        for name in ("save_checkpoints_steps", "log_steps", "steps_per_execution"):
            if getattr(self, name) <= 0:
                raise ParameterError(f"{name}={getattr(self, name)} must be positive", name)
        if self.clip_norm < 0:
            raise ParameterError(f"clip_norm={self.clip_norm} must be at least 0 (0 turns clipping off)", "clip_norm")
        if self.nan_policy not in NAN_POLICIES:
            raise ParameterError(f"nan_policy={self.nan_policy} is unknown: use stop or skip_batch", "nan_policy")
        check_precision(self.mixed_precision)


@dataclasses.dataclass(frozen=True)
class LoopSettings:
    """One ``train`` call: up to ``num_train_steps``, evaluating every ``eval_steps`` and at the end,
    keeping the best weights by ``metric_for_best_model`` (higher is better unless
    ``greater_is_better`` is false), stopping after ``early_stopping_patience`` evaluations without
    improvement; ``verbose`` shows a progress line."""
    num_train_steps: int
    eval_steps: Optional[int] = None
    metric_for_best_model: Optional[str] = None
    greater_is_better: bool = True
    early_stopping_patience: Optional[int] = None
    verbose: bool = True

    def __post_init__(self):
        if self.num_train_steps <= 0:
            raise ParameterError(f"num_train_steps={self.num_train_steps} must be positive", "num_train_steps")
