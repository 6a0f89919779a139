"""Optimizers and learning-rate schedules shared by pretraining and every fine-tuning task."""
import contextlib
import re

import tensorflow as tf
import tf_keras

from bert_tf.errors import UserError

# BERT's recipe: no weight decay on LayerNorm parameters and biases.
NO_DECAY = ["LayerNorm", "layer_norm", "bias"]


class WarmupLinearDecay(tf_keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to ``peak`` over ``warmup_steps``, then linear decay to 0 at ``total_steps``."""

    def __init__(self, peak, total_steps, warmup_steps):
        self.peak, self.total_steps, self.warmup_steps = peak, total_steps, warmup_steps

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = tf.cast(max(self.warmup_steps, 1), tf.float32)
        decay_span = tf.cast(max(self.total_steps - self.warmup_steps, 1), tf.float32)
        warming = self.peak * step / warmup
        decaying = self.peak * tf.maximum(0.0, 1.0 - (step - self.warmup_steps) / decay_span)
        return tf.where(step < self.warmup_steps, warming, decaying)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}


_ENCODER_LAYER = re.compile(r"layer_\._(\d+)/")


def layerwise_multiplier(variable_name, decay, num_layers):
    """The learning-rate factor of one variable under layer-wise decay (Clark et al., ELECTRA).

    Depth counts from the input: embeddings 0, encoder layer i at i + 1, everything above the
    encoder (pooler, task head) at num_layers + 1 with the full rate. Each step down multiplies
    by ``decay``, so the lower layers, which hold the most general features, move the least.
    """
    layer = _ENCODER_LAYER.search(variable_name)
    if layer is not None:
        depth = int(layer.group(1)) + 1
    elif "embeddings" in variable_name:
        depth = 0
    else:
        depth = num_layers + 1
    return decay ** (num_layers + 1 - depth)


class LayerwiseLearningRate:
    """Mixin giving each variable its own learning-rate factor, for the update and the weight decay.

    Safe under XLA: tf_keras traces the jit-compiled update once per variable (keyed by its id),
    so the factor read while tracing is that variable's own.
    """

    def configure_layerwise_decay(self, decay, num_layers):
        self._layerwise = (decay, num_layers) if decay != 1.0 else None
        self._lr_factor = None

    def lr_multiplier(self, variable):
        layerwise = getattr(self, "_layerwise", None)
        return 1.0 if layerwise is None else layerwise_multiplier(variable.name, *layerwise)

    @property
    def learning_rate(self):
        rate = super().learning_rate
        factor = getattr(self, "_lr_factor", None)
        return rate if factor is None else rate * factor

    @learning_rate.setter
    def learning_rate(self, value):
        tf_keras.optimizers.Optimizer.learning_rate.fset(self, value)

    @contextlib.contextmanager
    def _rate_of(self, variable):
        self._lr_factor = self.lr_multiplier(variable)
        try:
            yield
        finally:
            self._lr_factor = None

    # The base's per-variable entry point (eager, graph and XLA paths all pass through it), so
    # subclasses keep their own update_step untouched.
    def _update_step(self, gradient, variable):
        if getattr(self, "_layerwise", None) is None:
            return super()._update_step(gradient, variable)
        with self._rate_of(variable):
            super()._update_step(gradient, variable)

    def _apply_weight_decay(self, variables):
        if getattr(self, "_layerwise", None) is None:
            return super()._apply_weight_decay(variables)
        for variable in variables:
            with self._rate_of(variable):
                super()._apply_weight_decay([variable])


class AdamW(LayerwiseLearningRate, tf_keras.optimizers.AdamW):
    """tf_keras AdamW with per-variable learning-rate factors (layer-wise decay)."""


def create_optimizer(learning_rate, num_train_steps, num_warmup_steps, weight_decay=0.01, optimizer="adamw",
                     beta_1=0.9, beta_2=0.999, epsilon=1e-6, layerwise_lr_decay=1.0, num_layers=None):
    """AdamW (or LAMB) on the warmup/linear-decay schedule, decay excluded from LayerNorm and bias.

    ``layerwise_lr_decay`` < 1 scales encoder layer i's rate by decay**(num_layers - i) and the
    embeddings' by decay**(num_layers + 1); the pooler and task head keep the peak rate.
    """
    if learning_rate <= 0:
        raise UserError(f"--learning_rate={learning_rate} must be positive")
    if num_warmup_steps < 0:
        raise UserError(f"--num_warmup_steps={num_warmup_steps} must not be negative")
    if not 0 < layerwise_lr_decay <= 1:
        raise UserError(f"--layerwise_lr_decay={layerwise_lr_decay} must be in (0, 1]: 1 turns it off, "
                        "0.8-0.95 are usual")
    if layerwise_lr_decay != 1.0 and not num_layers:
        raise ValueError("layer-wise decay needs the model's number of encoder layers")
    schedule = WarmupLinearDecay(learning_rate, num_train_steps, num_warmup_steps)
    if optimizer == "adamw":
        opt = AdamW(learning_rate=schedule, weight_decay=weight_decay, beta_1=beta_1, beta_2=beta_2,
                    epsilon=epsilon)
        opt.exclude_from_weight_decay(var_names=NO_DECAY)
    elif optimizer == "lamb":
        from bert_tf.training.lamb import Lamb

        opt = Lamb(learning_rate=schedule, weight_decay=weight_decay, beta_1=beta_1, beta_2=beta_2,
                   epsilon=epsilon, exclude_from_weight_decay=NO_DECAY, exclude_from_layer_adaptation=NO_DECAY)
    else:
        raise UserError(f"--optimizer={optimizer} is unknown: use adamw or lamb")
    opt.configure_layerwise_decay(layerwise_lr_decay, num_layers)
    return opt
