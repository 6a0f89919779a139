import math

import pytest

from bert_tf.errors import ParameterError, UserError
from bert_tf.training import layerwise, optimization


def test_schedule_warms_up_then_decays_linearly_to_zero():
    schedule = optimization.WarmupSchedule(1e-3, total_steps=110, warmup_steps=10)
    values = [float(schedule(step)) for step in (0, 5, 10, 60, 110, 200)]
    assert values == pytest.approx([0.0, 5e-4, 1e-3, 5e-4, 0.0, 0.0])


# Peak 1e-3, end 1e-4, 10 warmup steps of 110: step 35 is a quarter through the decay, 60 half.
PEAK, END = 1e-3, 1e-4
CLOSED_FORM = {
    "linear": {35: END + (PEAK - END) * 0.75, 60: END + (PEAK - END) * 0.5, 110: END},
    "polynomial": {35: END + (PEAK - END) * 0.75 ** 2, 60: END + (PEAK - END) * 0.25, 110: END},
    "cosine": {35: END + (PEAK - END) * (1 + math.cos(math.pi / 4)) / 2, 60: END + (PEAK - END) / 2, 110: END},
    # Two waves: a quarter of the way is half way down the first; half way restarts at the peak.
    "cosine_with_restarts": {35: END + (PEAK - END) / 2, 60: PEAK, 85: END + (PEAK - END) / 2, 110: END},
    "constant": {35: PEAK, 60: PEAK, 110: PEAK},
}


@pytest.mark.parametrize("kind", sorted(CLOSED_FORM))
def test_every_schedule_warms_up_then_matches_its_closed_form(kind):
    """Eager, in a tf.function and under XLA: the step is a tensor, the formula pure tensor math."""
    import tensorflow as tf

    end = 0.0 if kind == "constant" else END
    schedule = optimization.make_schedule(PEAK, 110, 10, kind, lr_end=end, lr_power=2.0 if kind == "polynomial" else 1.0,
                                          num_cycles=2 if kind == "cosine_with_restarts" else 1)
    expected = {0: 0.0, 5: PEAK / 2, 10: PEAK, **CLOSED_FORM[kind], 500: CLOSED_FORM[kind][110]}
    steps = tf.constant(sorted(expected), tf.int64)
    eager = schedule(steps).numpy()
    compiled = tf.function(schedule, jit_compile=True)(steps).numpy()
    assert list(eager) == pytest.approx([expected[s] for s in sorted(expected)], rel=1e-5, abs=1e-12)
    assert list(compiled) == pytest.approx(list(eager), rel=1e-6)
    assert [float(schedule(s)) for s in sorted(expected)] == pytest.approx(list(eager), rel=1e-6)


@pytest.mark.parametrize("optimizer", ["adamw", "lamb"])
def test_optimizers_read_the_chosen_schedule_at_their_step(optimizer):
    import tensorflow as tf

    opt = optimization.create_optimizer(PEAK, 110, 10, optimizer=optimizer, lr_schedule="cosine", lr_end=END)
    variable = tf.Variable([1.0], name="dense/kernel")
    opt.build([variable])
    opt.iterations.assign(35)
    opt.apply_gradients([(tf.constant([0.0]), variable)])  # the rate in use is refreshed per update
    assert float(opt.learning_rate) == pytest.approx(CLOSED_FORM["cosine"][35], rel=1e-6)


def test_schedule_settings_take_defaults_and_refuse_knobs_the_schedule_ignores():
    from types import SimpleNamespace

    unset = dict(lr_schedule=None, lr_end=None, lr_power=None, num_cycles=None)
    assert optimization.schedule_settings(SimpleNamespace(**unset)) == optimization.SCHEDULE_DEFAULTS
    assert optimization.schedule_settings(SimpleNamespace(**unset), defaults={"lr_schedule": "cosine"}) == \
        dict(optimization.SCHEDULE_DEFAULTS, lr_schedule="cosine")
    assert optimization.schedule_settings(SimpleNamespace(**dict(unset, lr_schedule="polynomial", lr_power=2.0))) == \
        {"lr_schedule": "polynomial", "lr_end": 0.0, "lr_power": 2.0, "num_cycles": 1}
    with pytest.raises(UserError, match="--lr_power applies only to --lr_schedule=polynomial, not cosine"):
        optimization.schedule_settings(SimpleNamespace(**dict(unset, lr_schedule="cosine", lr_power=2.0)))
    with pytest.raises(UserError, match="--num_cycles applies only to --lr_schedule=cosine_with_restarts"):
        optimization.schedule_settings(SimpleNamespace(**dict(unset, num_cycles=3)))
    with pytest.raises(UserError, match="--lr_end does not apply to --lr_schedule=constant"):
        optimization.schedule_settings(SimpleNamespace(**dict(unset, lr_schedule="constant", lr_end=1e-5)))


@pytest.mark.parametrize("kwargs,message", [
    (dict(lr_end=2e-3), r"lr_end=0.002 must be at least 0 and below learning_rate=0.001"),
    (dict(lr_end=-1.0), r"lr_end=-1.0 must be at least 0"),
    (dict(lr_schedule="polynomial", lr_power=0.0), r"lr_power=0.0 must be positive"),
    (dict(lr_schedule="cosine_with_restarts", num_cycles=0), r"num_cycles=0 must be a positive"),
    (dict(lr_schedule="step"), r"lr_schedule=step is unknown"),
])
def test_bad_schedule_values_are_user_errors(kwargs, message):
    """The library names its parameters; a script names its flags (``as_flags``)."""
    with pytest.raises(ParameterError, match="^" + message) as error:
        optimization.make_schedule(1e-3, 100, 10, **kwargs)
    assert str(error.value.as_flags()).startswith("--" + message.replace(" learning_rate", " --learning_rate"))


def test_schedule_png_plots_every_step(tmp_path):
    path = tmp_path / "lr_schedule.png"
    optimization.save_schedule_png(optimization.make_schedule(1e-3, 50, 5, "cosine"), str(path))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert [p.name for p in tmp_path.iterdir()] == ["lr_schedule.png"]


def test_adamw_excludes_layer_norm_and_bias_from_decay():
    import tensorflow as tf

    opt = optimization.create_optimizer(1e-3, 100, 10)
    kernel = tf.Variable([[1.0]], name="dense/kernel")
    gamma = tf.Variable([1.0], name="LayerNorm/gamma")
    bias = tf.Variable([1.0], name="dense/bias")
    assert opt._use_weight_decay(kernel) and not opt._use_weight_decay(gamma) and not opt._use_weight_decay(bias)


def test_bad_values_are_user_errors():
    with pytest.raises(UserError, match="^learning_rate=0"):
        optimization.create_optimizer(0, 10, 1)
    with pytest.raises(UserError, match="^optimizer=sgd is unknown"):
        optimization.create_optimizer(1e-3, 10, 1, optimizer="sgd")


def test_layerwise_multipliers_follow_depth_from_the_input():
    names = {"m/bert/embeddings/word_embeddings/weight:0": 0.5 ** 4,
             "m/bert/encoder/layer_._0/attention/self/query/kernel:0": 0.5 ** 3,
             "m/bert/encoder/layer_._1/attention/self/query_lora/lora_a:0": 0.5 ** 2,
             "m/bert/encoder/layer_._2/output/LayerNorm/gamma:0": 0.5,
             "m/bert/pooler/dense/kernel:0": 1.0,
             "m/classifier/kernel:0": 1.0}
    for name, expected in names.items():
        assert layerwise.layerwise_multiplier(name, 0.5, num_layers=3) == expected, name


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


@pytest.mark.parametrize("decay,expected", [(1.0, [1, 1, 1, 4]), (0.5, [0.25, 0.5, 1, 4])])
def test_head_lr_multiplier_scales_only_the_task_head(decay, expected):
    """Adam's first step moves each weight by its rate: the head (outside bert/) at 4x, the encoder
    at its own rate, layer-wise decay or not."""
    import numpy as np
    import tensorflow as tf

    names = ["model/bert/embeddings/w", "model/bert/encoder/layer_._0/kernel", "model/bert/pooler/dense/kernel",
             "model/classifier/kernel"]
    variables = [tf.Variable(np.ones((2, 2), np.float32), name=name) for name in names]
    opt = optimization.create_optimizer(0.1, 100, 0, weight_decay=0.0, epsilon=1e-12, layerwise_lr_decay=decay,
                                        num_layers=1, head_lr_multiplier=4.0)
    opt.apply_gradients([(tf.ones((2, 2)), v) for v in variables])
    moved = [1.0 - float(v.numpy()[0, 0]) for v in variables]
    assert moved == pytest.approx([0.1 * f for f in expected], rel=1e-5)


def test_head_lr_multiplier_must_be_positive():
    with pytest.raises(UserError, match=r"^head_lr_multiplier=0.0 must be positive"):
        optimization.create_optimizer(1e-3, 10, 1, head_lr_multiplier=0.0)


def test_layerwise_decay_out_of_range_is_a_user_error():
    with pytest.raises(UserError, match=r"^layerwise_lr_decay=1.5 must be in \(0, 1\]"):
        optimization.create_optimizer(1e-3, 10, 1, layerwise_lr_decay=1.5, num_layers=2)


def test_fine_tuning_refuses_a_bad_schedule_before_writing_anything(tmp_path):
    from absl import flags

    from bert_tf.jobs import classifier

    fv = flags.FlagValues()
    classifier.define_flags(fv)
    fv(["test", "--do_train", f"--train_file={tmp_path / 'train.tsv'}", f"--output_dir={tmp_path / 'out'}",
        "--lr_schedule=constant", "--lr_end=1e-5"])
    with pytest.raises(UserError, match="--lr_end does not apply to --lr_schedule=constant"):
        classifier.run(fv)
    fv["lr_schedule"].value, fv["lr_end"].value = "polynomial", 1.0
    with pytest.raises(UserError, match=r"--lr_end=1.0 must be at least 0 and below --learning_rate=5e-05"):
        classifier.run(fv)
    assert list(tmp_path.iterdir()) == []
