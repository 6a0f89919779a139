"""LAMB (You et al., 2019, "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes").

tensorflow-addons, which carried the usual TF implementation, is end-of-life, so this is our own,
on the tf_keras optimizer API (distribution, loss scaling and checkpointing come from the base).

Per variable w with gradient g at step t:
    m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2
    u = m_hat / (sqrt(v_hat) + eps) + weight_decay * w          (bias-corrected moments)
    r = ||w|| / ||u||  (1 when either norm is 0 or w is excluded from layer adaptation)
    w <- w - lr * r * u
"""
import re

import tensorflow as tf
import tf_keras

from bert_tf.training.layerwise import LayerwiseLearningRate


class Lamb(LayerwiseLearningRate, tf_keras.optimizers.Optimizer):
    """Layer-wise adaptive Adam with decoupled weight decay inside the trust ratio.

    ``exclude_from_weight_decay`` / ``exclude_from_layer_adaptation``: regexes; a variable whose
    name matches any of them gets no decay / a trust ratio of 1. When layer adaptation exclusions
    are not given, they default to the weight-decay ones (as in the paper's BERT recipe).
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.0, beta_1=0.9, beta_2=0.999, epsilon=1e-6,
                 exclude_from_weight_decay=None, exclude_from_layer_adaptation=None, name="Lamb", **kwargs):
        # Weight decay is part of the update (inside the trust ratio), so the base class's
        # decoupled decay stays off.
        super().__init__(name=name, weight_decay=None, **kwargs)
        self._learning_rate = self._build_learning_rate(learning_rate)
        self.lamb_weight_decay = weight_decay
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.exclude_from_weight_decay_names = list(exclude_from_weight_decay or [])
        self.exclude_from_layer_adaptation_names = list(
            exclude_from_layer_adaptation if exclude_from_layer_adaptation is not None
            else self.exclude_from_weight_decay_names)

    def build(self, var_list):
        super().build(var_list)
        if getattr(self, "_built", False):
            return
        self._built = True
        self._momentums = [self.add_variable_from_reference(v, "m") for v in var_list]
        self._velocities = [self.add_variable_from_reference(v, "v") for v in var_list]

    @staticmethod
    def _matches(patterns, name):
        return any(re.search(p, name) is not None for p in patterns)

    def update_step(self, gradient, variable):
        dtype = variable.dtype
        gradient = tf.convert_to_tensor(gradient)  # IndexedSlices: the trust ratio needs the full update
        lr = tf.cast(self.learning_rate, dtype)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        index = self._index_dict[self._var_key(variable)]
        m, v = self._momentums[index], self._velocities[index]
        m.assign(beta_1 * m + (1.0 - beta_1) * gradient)
        v.assign(beta_2 * v + (1.0 - beta_2) * tf.square(gradient))
        m_hat = m / (1.0 - tf.pow(beta_1, step))
        v_hat = v / (1.0 - tf.pow(beta_2, step))
        update = m_hat / (tf.sqrt(v_hat) + tf.cast(self.epsilon, dtype))
        name = variable.name
        if self.lamb_weight_decay and not self._matches(self.exclude_from_weight_decay_names, name):
            update += tf.cast(self.lamb_weight_decay, dtype) * variable
        ratio = tf.constant(1.0, dtype)
        if not self._matches(self.exclude_from_layer_adaptation_names, name):
            w_norm = tf.norm(variable)
            u_norm = tf.norm(update)
            ratio = tf.where(w_norm > 0, tf.where(u_norm > 0, w_norm / u_norm, 1.0), 1.0)
        variable.assign_sub(lr * ratio * update)

    def get_config(self):
        config = super().get_config()
        config.update({
            "learning_rate": self._serialize_hyperparameter(self._learning_rate),
            "weight_decay": self.lamb_weight_decay,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "exclude_from_weight_decay": self.exclude_from_weight_decay_names,
            "exclude_from_layer_adaptation": self.exclude_from_layer_adaptation_names,
        })
        return config
