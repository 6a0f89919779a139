"""--clip_norm: the update is the gradient scaled to the clip norm, and 0 leaves it unclipped."""
import bert_tf  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from bert_tf.errors import UserError
from bert_tf.training.settings import TrainerSettings
from bert_tf.training.trainer import Trainer
from tests.training.test_gradient_accumulation import TinyRegressor

X = np.random.RandomState(0).randn(4, 5).astype(np.float32)
TARGET = np.full(4, 50.0, np.float32)  # far from any start: the gradient's norm is far above 1


def _model():
    tf_keras.utils.set_random_seed(3)
    model = TinyRegressor()
    model({"x": tf.zeros((1, 5))})
    return model


def _one_sgd_step(tmp_path, clip_norm):
    trainer = Trainer(tf.distribute.get_strategy(), _model, lambda: tf_keras.optimizers.SGD(1.0),
                      str(tmp_path / f"clip{clip_norm}"),
                      TrainerSettings(4, log_steps=1, save_checkpoints_steps=100, clip_norm=clip_norm))
    trainer.train(lambda context: tf.data.Dataset.from_tensor_slices({"x": X, "target": TARGET}).batch(4), 1,
                  verbose=False)
    return [w.numpy() for w in trainer.model.trainable_weights]


def test_clip_norm_scales_the_update_and_zero_turns_it_off(tmp_path):
    model = _model()
    start = [w.numpy() for w in model.trainable_weights]
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model.per_example_loss({"target": TARGET}, model({"x": X}, training=True)))
    grads = [g.numpy() for g in tape.gradient(loss, model.trainable_weights)]
    norm = np.sqrt(sum((g ** 2).sum() for g in grads))
    assert norm > 10
    for clip_norm, scale in ((0.0, 1.0), (1.0, 1.0 / norm)):
        for after, before, grad in zip(_one_sgd_step(tmp_path, clip_norm), start, grads):
            np.testing.assert_allclose(after, before - scale * grad, rtol=1e-4, atol=1e-6)


def test_negative_clip_norm_is_refused(tmp_path):
    with pytest.raises(UserError, match=r"^clip_norm=-1.0 must be at least 0"):
        TrainerSettings(4, clip_norm=-1.0)
    # A script's trainer (flag_names given) names the flag.
    with pytest.raises(UserError, match=r"^--clip_norm=-1.0 must be at least 0"):
        Trainer(tf.distribute.get_strategy(), _model, lambda: tf_keras.optimizers.SGD(1.0), str(tmp_path),
                4, flag_names={}, clip_norm=-1.0)
