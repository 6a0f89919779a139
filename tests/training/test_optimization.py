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


def test_layerwise_multipliers_follow_depth_from_the_input():
    names = {"m/bert/embeddings/word_embeddings/weight:0": 0.5 ** 4,
             "m/bert/encoder/layer_._0/attention/self/query/kernel:0": 0.5 ** 3,
             "m/bert/encoder/layer_._1/attention/self/query_lora/lora_a:0": 0.5 ** 2,
             "m/bert/encoder/layer_._2/output/LayerNorm/gamma:0": 0.5,
             "m/bert/pooler/dense/kernel:0": 1.0,
             "m/classifier/kernel:0": 1.0}
    for name, expected in names.items():
        assert optimization.layerwise_multiplier(name, 0.5, num_layers=3) == expected, name


@pytest.mark.parametrize("optimizer,jit", [("adamw", False), ("adamw", True), ("lamb", False)])
def test_layerwise_decay_scales_each_variables_step(optimizer, jit):
    """Adam's first step moves every weight by lr * sign(g); under decay 0.5 with 2 layers the
    embeddings move 1/8, layer 0 1/4, layer 1 1/2 and the head the full rate. Equal shapes share
    nothing: under XLA each variable keeps its own factor. Weight decay is scaled the same way."""
    import numpy as np
    import tensorflow as tf

    names = ["bert/embeddings/w", "bert/encoder/layer_._0/kernel", "bert/encoder/layer_._1/kernel", "classifier/kernel"]
    variables = [tf.Variable(np.ones((2, 2), np.float32), name=name) for name in names]
    opt = optimization.create_optimizer(0.1, 100, 0, weight_decay=0.5, optimizer=optimizer, epsilon=1e-12,
                                        layerwise_lr_decay=0.5, num_layers=2)
    opt.jit_compile = jit
    opt.build(variables)
    lr = float(opt._learning_rate(0))
    assert lr == pytest.approx(0.1)

    @tf.function
    def step():
        opt.apply_gradients([(tf.ones((2, 2)), v) for v in variables])

    step()
    moved = [1.0 - float(v.numpy()[0, 0]) for v in variables]
    factors = [0.125, 0.25, 0.5, 1.0]
    if optimizer == "adamw":
        # Decoupled decay first (w * wd * lr), then the Adam step lr * 1.
        expected = [f * 0.1 * 0.5 + f * 0.1 for f in factors]
    else:
        # LAMB: update u = 1 + wd * w = 1.5 per entry, trust ratio ||w|| / ||u|| = 2 / 3.
        expected = [f * 0.1 * (2 / 3) * 1.5 for f in factors]
    assert moved == pytest.approx(expected, rel=1e-5)
    assert float(opt.learning_rate) == pytest.approx(0.1)  # the reported rate is the peak's, unscaled


def test_layerwise_decay_out_of_range_is_a_user_error():
    with pytest.raises(UserError, match=r"--layerwise_lr_decay=1.5 must be in \(0, 1\]"):
        optimization.create_optimizer(1e-3, 10, 1, layerwise_lr_decay=1.5, num_layers=2)
