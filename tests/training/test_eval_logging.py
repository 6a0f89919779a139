"""Evaluations reach train_metrics.jsonl and TensorBoard's eval run; an early stop keeps its training
metrics; one-line warnings for runs that are too long or all warmup."""
import glob
import json

import bert_tf  # noqa: F401
import numpy as np
import tensorflow as tf
import tf_keras

from bert_tf.jobs import common
from bert_tf.errors import in_flag_terms, warn
from bert_tf.training import train_log
from bert_tf.training.settings import TrainerSettings
from bert_tf.training.trainer import Trainer
from tests.training.test_gradient_accumulation import TinyRegressor


def _trainer(output_dir):
    def model_fn():
        tf_keras.utils.set_random_seed(3)
        model = TinyRegressor()
        model({"x": tf.zeros((1, 5))})
        return model

    return Trainer(tf.distribute.get_strategy(), model_fn, lambda: tf_keras.optimizers.AdamW(1e-2),
                   output_dir, TrainerSettings(4, log_steps=100, save_checkpoints_steps=100))


def test_evaluations_logged_and_early_stop_keeps_training_metrics(tmp_path):
    rng = np.random.RandomState(0)
    x = rng.randn(40, 5).astype(np.float32)
    dataset_fn = lambda context: tf.data.Dataset.from_tensor_slices(  # noqa: E731
        {"x": x, "target": x.sum(1)}).repeat().batch(4)
    scores = iter([0.5, 0.75, 0.25, 0.125])  # best at step 2, then two evaluations without improvement

    output_dir = str(tmp_path / "run")
    summary = _trainer(output_dir).train(dataset_fn, 10, eval_fn=lambda model: {"score": next(scores), "note": "x"},
                                         eval_steps=1, metric_for_best_model="score", early_stopping_patience=2,
                                         verbose=False)
    assert summary["stopped_early"] and summary["global_step"] == 4
    with open(f"{output_dir}/train_metrics.jsonl") as f:
        lines = [json.loads(line) for line in f]
    assert [line for line in lines if "eval_score" in line] == [
        {"eval_score": 0.5, "step": 1}, {"eval_score": 0.75, "step": 2}, {"eval_score": 0.25, "step": 3},
        {"eval_score": 0.125, "step": 4}]
    # --log_steps=100 was never reached: the early stop still writes the training line of its last step.
    training = [line for line in lines if "loss" in line]
    assert len(training) == 1 and training[0]["step"] == 4 and np.isfinite(training[0]["loss"])

    logged = {}
    for path in glob.glob(f"{output_dir}/logs/eval/events.*"):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                logged[(event.step, value.tag)] = float(tf.make_ndarray(value.tensor))
    assert logged == {(1, "score"): 0.5, (2, "score"): 0.75, (3, "score"): 0.25, (4, "score"): 0.125}


def test_long_run_and_all_warmup_warnings(capsys):
    long_run = train_log.long_run_warning(step=2, num_train_steps=1002, chunk=1, seconds=90.0)  # 1000 x 90 s = 25 h
    assert train_log.long_run_warning(step=2, num_train_steps=902, chunk=1, seconds=90.0) is None  # 22.5 h: quiet
    assert long_run[0].endswith("lower num_train_steps, or use a GPU/TPU (strategy) or mixed_precision")
    warn(in_flag_terms(*long_run))  # as a script's trainer (flag_names) words it
    common.warn_if_warmup_covers(8, 10000, 1e-4)
    common.warn_if_warmup_covers(100, 10, 1e-4)  # quiet
    common.warn_if_warmup_covers(2, 2, 5e-5)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "warning: at the measured 90 s/step the remaining 1000 steps take about 25.0 hours: lower "
        "--num_train_steps, or use a GPU/TPU (--strategy) or --mixed_precision",
        "warning: the 10000 warmup steps cover all 8 training steps: the learning rate never reaches "
        "--learning_rate=0.0001 and ends at 8e-08; lower the warmup (--num_warmup_steps / --warmup_proportion) "
        "or train longer",
        "warning: the 2 warmup steps cover all 2 training steps: the learning rate reaches --learning_rate=5e-05 "
        "only at the last step; lower the warmup (--num_warmup_steps / --warmup_proportion) or train longer"]
