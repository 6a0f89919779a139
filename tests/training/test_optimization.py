import pytest

from bert_tf.errors import UserError
from bert_tf.training import optimization


def test_schedule_warms_up_then_decays_linearly_to_zero():
    schedule = optimization.WarmupLinearDecay(1e-3, total_steps=110, warmup_steps=10)
    values = [float(schedule(step)) for step in (0, 5, 10, 60, 110, 200)]
    assert values == pytest.approx([0.0, 5e-4, 1e-3, 5e-4, 0.0, 0.0])


def test_adamw_excludes_layer_norm_and_bias_from_decay():
    import tensorflow as tf

    opt = optimization.create_optimizer(1e-3, 100, 10)
    kernel = tf.Variable([[1.0]], name="dense/kernel")
    gamma = tf.Variable([1.0], name="LayerNorm/gamma")
    bias = tf.Variable([1.0], name="dense/bias")
    assert opt._use_weight_decay(kernel) and not opt._use_weight_decay(gamma) and not opt._use_weight_decay(bias)


def test_bad_values_are_user_errors():
    with pytest.raises(UserError, match="--learning_rate=0"):
        optimization.create_optimizer(0, 10, 1)
    with pytest.raises(UserError, match="--optimizer=sgd is unknown"):
        optimization.create_optimizer(1e-3, 10, 1, optimizer="sgd")
