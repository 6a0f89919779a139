"""Optimizers and learning-rate schedules shared by pretraining and every fine-tuning task."""
import math

import tensorflow as tf
import tf_keras

from bert_tf import fileio
from bert_tf.errors import ParameterError
from bert_tf.training.lamb import Lamb
from bert_tf.training.layerwise import LayerwiseLearningRate

# BERT's recipe: no weight decay on LayerNorm parameters and biases.
NO_DECAY = ["LayerNorm", "layer_norm", "bias"]


SCHEDULES = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant")
# What a run gets for the knobs it leaves unset. A recipe (a named set of defaults) hands in its own
# dict to ``schedule_settings``; what the user sets on the command line always wins.
SCHEDULE_DEFAULTS = {"lr_schedule": "linear", "lr_end": 0.0, "lr_power": 1.0, "num_cycles": 1}
# The knob each schedule reads beyond lr_end; setting one the schedule ignores is refused.
_ONLY_FOR = {"lr_power": "polynomial", "num_cycles": "cosine_with_restarts"}


class WarmupSchedule(tf_keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to ``peak`` over ``warmup_steps``, then ``kind`` until ``total_steps``.

    With progress p in [0, 1] through the steps after warmup, the rate is
        linear:                end + (peak - end) * (1 - p)
        polynomial:            end + (peak - end) * (1 - p) ** power
        cosine:                end + (peak - end) * (1 + cos(pi p)) / 2
        cosine_with_restarts:  end + (peak - end) * (1 + cos(pi frac(num_cycles p))) / 2, end once p = 1
        constant:              peak
    and it stays at the last value beyond ``total_steps``. Only tensor arithmetic depends on the
    step (the kind is fixed at construction), so the schedule compiles under XLA and on TPUs.
    """

    def __init__(self, peak, total_steps, warmup_steps, kind="linear", end=0.0, power=1.0, num_cycles=1):
        if kind not in SCHEDULES:
            raise ParameterError(f"kind={kind} is unknown: use one of {', '.join(SCHEDULES)}", "kind")
        self.peak, self.total_steps, self.warmup_steps = peak, total_steps, warmup_steps
        self.kind, self.end, self.power, self.num_cycles = kind, end, power, num_cycles

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = tf.cast(max(self.warmup_steps, 1), tf.float32)
        decay_span = tf.cast(max(self.total_steps - self.warmup_steps, 1), tf.float32)
        warming = self.peak * step / warmup
        progress = tf.clip_by_value((step - self.warmup_steps) / decay_span, 0.0, 1.0)
        return tf.where(step < self.warmup_steps, warming, self._after_warmup(progress))

    def _after_warmup(self, progress):
        span = self.peak - self.end
        if self.kind == "constant":
            return tf.ones_like(progress) * self.peak
        if self.kind == "linear":
            return self.end + span * (1.0 - progress)
        if self.kind == "polynomial":
            return self.end + span * tf.pow(1.0 - progress, self.power)
        if self.kind == "cosine":
            return self.end + span * 0.5 * (1.0 + tf.cos(math.pi * progress))
        cycle = tf.math.floormod(progress * float(self.num_cycles), 1.0)
        # The wave restarts at the peak when frac() wraps; the last step itself ends at ``end``.
        return tf.where(progress >= 1.0, self.end, self.end + span * 0.5 * (1.0 + tf.cos(math.pi * cycle)))

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps,
                "kind": self.kind, "end": self.end, "power": self.power, "num_cycles": self.num_cycles}


def schedule_settings(flags, defaults=None):
    """{lr_schedule, lr_end, lr_power, num_cycles} from the flags, unset ones from ``defaults``.

    Refuses a knob set for a schedule that does not read it (it would be ignored silently).
    Objects without the schedule flags (older flag sets) get the defaults. It reads flags, so its
    errors name them.
    """
    defaults = dict(SCHEDULE_DEFAULTS, **(defaults or {}))
    given = {name: getattr(flags, name, None) for name in SCHEDULE_DEFAULTS}
    kind = given["lr_schedule"] or defaults["lr_schedule"]
    for name, only in _ONLY_FOR.items():
        if given[name] is not None and kind != only:
            raise ParameterError(f"{name} applies only to lr_schedule={only}, not {kind}: drop it or change "
                                 "lr_schedule", name, "lr_schedule").as_flags()
    if given["lr_end"] is not None and kind == "constant":
        raise ParameterError("lr_end does not apply to lr_schedule=constant, which stays at learning_rate: "
                             "drop it or pick a decaying schedule", "lr_end", "lr_schedule", "learning_rate").as_flags()
    settings = {name: defaults[name] if value is None else value for name, value in given.items()}
    settings["lr_schedule"] = kind
    return settings


def check_schedule_flags(flags, defaults=None):
    """``schedule_settings`` with every value checked as ``make_schedule`` checks it, for the
    up-front flag checks (before any data is converted or any output written)."""
    settings = schedule_settings(flags, defaults)
    try:
        make_schedule(flags.learning_rate, 1, 0, **settings)
    except ParameterError as error:
        raise error.as_flags() from None
    return settings


def make_schedule(learning_rate, num_train_steps, num_warmup_steps, lr_schedule="linear", lr_end=0.0, lr_power=1.0,
                  num_cycles=1):
    """The warmup schedule, its settings checked (every failure names the parameter to change)."""
    if lr_schedule not in SCHEDULES:
        raise ParameterError(f"lr_schedule={lr_schedule} is unknown: use one of {', '.join(SCHEDULES)}",
                             "lr_schedule")
    if learning_rate <= 0:
        raise ParameterError(f"learning_rate={learning_rate} must be positive", "learning_rate")
    if num_warmup_steps < 0:
        raise ParameterError(f"num_warmup_steps={num_warmup_steps} must not be negative", "num_warmup_steps")
    if lr_schedule != "constant" and not 0 <= lr_end < learning_rate:
        raise ParameterError(f"lr_end={lr_end} must be at least 0 and below learning_rate={learning_rate}",
                             "lr_end", "learning_rate")
    if lr_power <= 0:
        raise ParameterError(f"lr_power={lr_power} must be positive (1 is linear decay, 2 a faster early drop)",
                             "lr_power")
    if num_cycles < 1:
        raise ParameterError(f"num_cycles={num_cycles} must be a positive number of cosine waves", "num_cycles")
    return WarmupSchedule(learning_rate, num_train_steps, num_warmup_steps, lr_schedule, float(lr_end),
                          float(lr_power), int(num_cycles))


def save_schedule_png(schedule, path):
    """A plot of the rate over every training step, written atomically (any tf.io.gfile path)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    total = max(int(schedule.total_steps), 1)
    # Every step up to a few thousand; beyond that a dense sample plus the warmup's end.
    steps = np.arange(total + 1) if total <= 5000 else np.unique(
        np.concatenate([np.linspace(0, total, 5001).astype(np.int64), [schedule.warmup_steps]]))
    rates = schedule(tf.constant(steps)).numpy()
    figure, axes = plt.subplots(figsize=(6, 3.5))
    # Steps, not a line: each rate holds for one update, and a restart is a jump, not a ramp.
    axes.plot(steps, rates, drawstyle="steps-post")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("learning rate")
    axes.set_title(f"{schedule.kind} schedule, {schedule.warmup_steps} warmup steps")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    try:
        fileio.write_png(path, figure)
    finally:
        plt.close(figure)


class AdamW(LayerwiseLearningRate, tf_keras.optimizers.AdamW):
    """tf_keras AdamW with per-variable learning-rate factors (layer-wise decay)."""


def create_optimizer(learning_rate, num_train_steps, num_warmup_steps, weight_decay=0.01, optimizer="adamw",
                     beta_1=0.9, beta_2=0.999, epsilon=1e-6, layerwise_lr_decay=1.0, num_layers=None,
                     head_lr_multiplier=1.0, lr_schedule="linear", lr_end=0.0, lr_power=1.0, num_cycles=1):
    """AdamW (or LAMB) on a warmup schedule (``make_schedule``), decay excluded from LayerNorm and bias.

    ``layerwise_lr_decay`` < 1 scales encoder layer i's rate by decay**(num_layers - i) and the
    embeddings' by decay**(num_layers + 1); the pooler keeps the peak rate, and the task head (the
    layers outside the pretrained encoder) the peak rate times ``head_lr_multiplier``.
    """
    schedule = make_schedule(learning_rate, num_train_steps, num_warmup_steps, lr_schedule, lr_end, lr_power,
                             num_cycles)
    if not 0 < layerwise_lr_decay <= 1:
        raise ParameterError(f"layerwise_lr_decay={layerwise_lr_decay} must be in (0, 1]: 1 turns it off, "
                             "0.8-0.95 are usual", "layerwise_lr_decay")
    if not head_lr_multiplier > 0:
        raise ParameterError(f"head_lr_multiplier={head_lr_multiplier} must be positive: 1 trains the head at the "
                             "peak rate", "head_lr_multiplier")
    if layerwise_lr_decay != 1.0 and not num_layers:
        raise ValueError("layer-wise decay needs the model's number of encoder layers")
    if optimizer == "adamw":
        opt = AdamW(learning_rate=schedule, weight_decay=weight_decay, beta_1=beta_1, beta_2=beta_2,
                    epsilon=epsilon)
        opt.exclude_from_weight_decay(var_names=NO_DECAY)
    elif optimizer == "lamb":
        opt = Lamb(learning_rate=schedule, weight_decay=weight_decay, beta_1=beta_1, beta_2=beta_2,
                   epsilon=epsilon, exclude_from_weight_decay=NO_DECAY, exclude_from_layer_adaptation=NO_DECAY)
    else:
        raise ParameterError(f"optimizer={optimizer} is unknown: use adamw or lamb", "optimizer")
    opt.configure_rate_factors(layerwise_lr_decay, num_layers, head_lr_multiplier)
    return opt
