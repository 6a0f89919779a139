"""Per-variable learning-rate factors: layer-wise decay by depth, a multiplier for the task head, and
the optimizer mixin that applies them (shared by AdamW and LAMB)."""
import contextlib
import re

import tf_keras

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


def is_task_head(variable_name):
    """Whether a variable belongs to the task head (classifier, qa_outputs, ...): everything outside the
    pretrained encoder, whose layers all live under ``bert/``."""
    return "/bert/" not in variable_name and not variable_name.startswith("bert/")


class LayerwiseLearningRate:
    """Mixin giving each variable its own learning-rate factor, for the update and the weight decay.

    Safe under XLA: tf_keras traces the jit-compiled update once per variable (keyed by its id),
    so the factor read while tracing is that variable's own.
    """

    def configure_rate_factors(self, decay, num_layers, head_multiplier=1.0):
        self._layerwise = (decay, num_layers, head_multiplier) if (decay, head_multiplier) != (1.0, 1.0) else None
        self._lr_factor = None

    def lr_multiplier(self, variable):
        layerwise = getattr(self, "_layerwise", None)
        if layerwise is None:
            return 1.0
        decay, num_layers, head_multiplier = layerwise
        factor = layerwise_multiplier(variable.name, decay, num_layers) if decay != 1.0 else 1.0
        return factor * head_multiplier if is_task_head(variable.name) else factor

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
