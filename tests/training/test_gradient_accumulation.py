"""Gradient accumulation: k micro-batches of B give the update of one batch of k*B."""
import bert_tf  # noqa: F401
import numpy as np
import tensorflow as tf
import tf_keras

from bert_tf.training.settings import TrainerSettings
from bert_tf.training.trainer import Trainer


class TinyRegressor(tf_keras.Model):
    train_metric_names = ("abs_error",)

    def __init__(self):
        super().__init__()
        self.hidden = tf_keras.layers.Dense(8, activation="tanh", kernel_initializer="glorot_uniform")
        self.out = tf_keras.layers.Dense(1)

    def call(self, features, training=False):
        return {"y": self.out(self.hidden(features["x"]))[:, 0]}

    def per_example_loss(self, features, outputs):
        return tf.square(outputs["y"] - features["target"])

    def train_metrics(self, features, outputs):
        return {"abs_error": (tf.abs(outputs["y"] - features["target"]), None)}


def _train(tmp_path, name, batch_size, accumulation, steps):
    rng = np.random.RandomState(0)
    x = rng.randn(48, 5).astype(np.float32)
    target = (x @ rng.randn(5) + 0.1).astype(np.float32)

    def model_fn():
        tf_keras.utils.set_random_seed(3)
        model = TinyRegressor()
        model({"x": tf.zeros((1, 5))})
        return model

    trainer = Trainer(tf.distribute.get_strategy(), model_fn, lambda: tf_keras.optimizers.AdamW(1e-2, weight_decay=0.01),
                      str(tmp_path / name), TrainerSettings(batch_size, log_steps=steps, save_checkpoints_steps=100,
                                                            clip_norm=0.5, gradient_accumulation_steps=accumulation))
    dataset_fn = lambda context: tf.data.Dataset.from_tensor_slices({"x": x, "target": target}).batch(  # noqa: E731
        batch_size, drop_remainder=True)
    summary = trainer.train(dataset_fn, steps, verbose=False)
    return trainer, summary


def test_accumulated_steps_equal_larger_batch(tmp_path):
    big, big_summary = _train(tmp_path, "big", batch_size=12, accumulation=1, steps=3)
    small, small_summary = _train(tmp_path, "small", batch_size=4, accumulation=3, steps=3)
    assert small.global_step == big.global_step == 3
    for a, b in zip(big.model.weights, small.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    # Logged loss is the mean over the same 36 examples either way; throughput counts micro-batches.
    big_log, small_log = big_summary["train_history"][-1], small_summary["train_history"][-1]
    assert small_log["loss"] == np.float32(small_log["loss"])
    np.testing.assert_allclose(small_log["loss"], big_log["loss"], rtol=1e-5)
    np.testing.assert_allclose(small_log["abs_error"], big_log["abs_error"], rtol=1e-5)
    # Accumulators are cleared after every applied step.
    assert all(float(tf.reduce_max(tf.abs(a))) == 0.0 for a in small._steps._accumulated)
    # Plain small-batch training (no accumulation) takes a different path: the test can fail.
    plain, _ = _train(tmp_path, "plain", batch_size=4, accumulation=1, steps=3)
    assert max(float(np.abs(a.numpy() - b.numpy()).max()) for a, b in zip(big.model.weights, plain.model.weights)) > 1e-4


def test_resume_skips_accumulated_micro_batches(tmp_path):
    first, _ = _train(tmp_path, "resume", batch_size=4, accumulation=2, steps=2)
    resumed, _ = _train(tmp_path, "resume", batch_size=4, accumulation=2, steps=4)
    straight, _ = _train(tmp_path, "straight", batch_size=4, accumulation=2, steps=4)
    assert resumed.global_step == 4
    for a, b in zip(resumed.model.weights, straight.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
