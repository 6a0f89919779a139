"""LAMB: one and two update steps against a numpy computation of the paper's rule."""
import bert_tf  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf

from bert_tf.training import optimization
from bert_tf.training.lamb import Lamb


def numpy_lamb(w, grads, lr, wd, b1, b2, eps, decay, adapt):
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        u = (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        if decay:
            u = u + wd * w
        ratio = 1.0
        if adapt:
            w_norm, u_norm = np.linalg.norm(w), np.linalg.norm(u)
            ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
        w = w - lr * ratio * u
    return w


def test_two_steps_match_numpy_with_and_without_exclusions():
    rng = np.random.RandomState(0)
    kernel0 = rng.randn(4, 3).astype(np.float32)
    bias0 = rng.randn(3).astype(np.float32)
    grads = [(rng.randn(4, 3).astype(np.float32), rng.randn(3).astype(np.float32)) for _ in range(2)]
    kernel = tf.Variable(kernel0, name="dense/kernel")
    bias = tf.Variable(bias0, name="dense/bias")
    optimizer = Lamb(learning_rate=0.01, weight_decay=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-6,
                     exclude_from_weight_decay=["bias"], exclude_from_layer_adaptation=["bias"])
    for g_kernel, g_bias in grads:
        optimizer.apply_gradients([(tf.constant(g_kernel), kernel), (tf.constant(g_bias), bias)])
    expected_kernel = numpy_lamb(kernel0, [g for g, _ in grads], 0.01, 0.1, 0.9, 0.999, 1e-6, True, True)
    expected_bias = numpy_lamb(bias0, [g for _, g in grads], 0.01, 0.1, 0.9, 0.999, 1e-6, False, False)
    np.testing.assert_allclose(kernel.numpy(), expected_kernel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias.numpy(), expected_bias, rtol=1e-5, atol=1e-6)
    # The optimizer applies the trust ratio: plain Adam-with-decay would have landed elsewhere.
    no_ratio = numpy_lamb(kernel0, [g for g, _ in grads], 0.01, 0.1, 0.9, 0.999, 1e-6, True, False)
    assert np.abs(no_ratio - kernel.numpy()).max() > 1e-3


def test_zero_weights_use_ratio_one():
    variable = tf.Variable(np.zeros(3, np.float32), name="w")
    gradient = np.array([1.0, -2.0, 0.5], np.float32)
    Lamb(learning_rate=0.1, weight_decay=0.0).apply_gradients([(tf.constant(gradient), variable)])
    expected = numpy_lamb(np.zeros(3, np.float32), [gradient], 0.1, 0.0, 0.9, 0.999, 1e-6, False, True)
    np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(variable.numpy(), -0.1 * np.sign(gradient), rtol=1e-4)


def test_sparse_gradient_is_densified():
    variable = tf.Variable(np.ones((3, 2), np.float32), name="embeddings")
    sparse = tf.IndexedSlices(tf.constant([[1.0, 2.0]]), tf.constant([1]), tf.constant([3, 2]))
    dense = tf.convert_to_tensor(sparse).numpy()
    Lamb(learning_rate=0.05, weight_decay=0.01).apply_gradients([(sparse, variable)])
    expected = numpy_lamb(np.ones((3, 2), np.float32), [dense], 0.05, 0.01, 0.9, 0.999, 1e-6, True, True)
    np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-5)


def test_create_optimizer_builds_lamb_on_the_schedule():
    optimizer = optimization.create_optimizer(1e-3, num_train_steps=10, num_warmup_steps=2, optimizer="lamb")
    assert isinstance(optimizer, Lamb)
    assert optimizer.exclude_from_weight_decay_names == optimization.NO_DECAY
    assert float(optimizer.learning_rate) == pytest.approx(0.0)  # warmup starts at 0
