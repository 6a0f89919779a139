"""``--quantize=float16``: weights stored as float16 in the SavedModel, computed in float32.

The export holds each float32 weight twice: a float16 variable with the values, and an empty
float32 variable of unknown shape that the model's layers read. The first request after loading
(TF Serving's warmup request, in practice) fills every float32 variable from its float16 twin,
once; later requests read float32 weights directly, so latency is that of the float32 export
while the variables on disk take half the space. Only the rounding of weights to float16 changes
the outputs (documented in docs/serving.md).
"""
import types

import tensorflow as tf


class Float16Weights(tf.Module):
    """Re-points a Keras model's float32 weights at lazily filled float32 copies of float16 values."""

    def __init__(self, model):
        super().__init__(name="float16_weights")
        originals = [v for v in model.weights if v.dtype == tf.float32]
        self.half = [tf.Variable(tf.cast(v, tf.float16), trainable=False, name=f"half_{i}")
                     for i, v in enumerate(originals)]
        # Saved with no elements (the values live in ``half`` only); the rank stays known for Keras.
        self.full = [tf.Variable(tf.zeros([0] * v.shape.rank, tf.float32), shape=[None] * v.shape.rank,
                                 trainable=False, name=f"full_{i}") for i, v in enumerate(originals)]
        self.ready = tf.Variable(False, trainable=False, name="ready")
        self.other_variables = [v for v in model.weights if v.dtype != tf.float32]
        self._repoint(model, {id(v): full for v, full in zip(originals, self.full)})
        self._keras = types.SimpleNamespace(model=model)

    @staticmethod
    def _repoint(model, replacement):
        """Swaps the layer attributes (kernel, bias, gamma, embeddings...) that hold the originals."""
        found = set()
        for layer in [model] + list(model.submodules):
            for name, value in list(vars(layer).items()):
                if id(value) in replacement:
                    # object.__setattr__: Keras' own __setattr__ would track the copy as a new weight.
                    object.__setattr__(layer, name, replacement[id(value)])
                    found.add(id(value))
        if len(found) != len(replacement):
            raise RuntimeError(f"{len(replacement) - len(found)} weights are not layer attributes; "
                               "float16 export cannot re-point them")

    def materialize(self):
        """Op that fills the float32 weights on first use; the model's reads must depend on it."""
        def fill():
            assigns = [full.assign(tf.cast(half, tf.float32)) for full, half in zip(self.full, self.half)]
            with tf.control_dependencies(assigns):
                return self.ready.assign(True)
        return tf.cond(self.ready, lambda: tf.constant(True), fill)
