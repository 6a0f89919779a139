"""TPU readiness without a TPU: every task's training and evaluation step compiles with XLA.

A TPU runs only what XLA can compile with static shapes; compiling the same steps with
``jit_compile=True`` on the CPU catches dynamic shapes and unsupported ops before a TPU job does.
"""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from transformers import BertConfig

from bert_tf.modeling import tasks
from bert_tf.tasks import registry
from bert_tf.training import optimization
from bert_tf.training.settings import TrainerSettings
from bert_tf.training.trainer import Trainer

BATCH, LENGTH, VOCAB = 4, 16, 100


def _config():
    return BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=64)


def _encoder_inputs(rng, shape):
    mask = np.ones(shape, np.int32)
    mask[..., -3:] = 0  # padding, as real batches have
    return {"input_ids": rng.integers(5, VOCAB, shape).astype(np.int32) * mask, "attention_mask": mask,
            "token_type_ids": np.zeros(shape, np.int32)}


def _features(task, rng):
    """A static-shape batch with the labels each task's loss reads (int32, as the reader casts)."""
    if task == "multiple_choice":
        features = _encoder_inputs(rng, (BATCH, 3, LENGTH))
        features["label_ids"] = rng.integers(0, 3, (BATCH, 1)).astype(np.int32)
        return features
    features = _encoder_inputs(rng, (BATCH, LENGTH))
    if task == "classification":
        features["label_ids"] = rng.integers(0, 3, (BATCH, 1)).astype(np.int32)
    elif task == "regression":
        features["label_values"] = rng.random((BATCH, 1)).astype(np.float32)
    elif task == "tagging":
        features["label_ids"] = rng.integers(0, 3, (BATCH, LENGTH)).astype(np.int32)
        features["label_ids"][:, -3:] = tasks.IGNORE_LABEL
    elif task == "squad":
        features["start_positions"] = rng.integers(0, LENGTH - 3, (BATCH, 1)).astype(np.int32)
        features["end_positions"] = rng.integers(0, LENGTH - 3, (BATCH, 1)).astype(np.int32)
    elif task == "pretraining":
        features["masked_lm_positions"] = rng.integers(1, LENGTH - 3, (BATCH, 4)).astype(np.int32)
        features["masked_lm_ids"] = rng.integers(5, VOCAB, (BATCH, 4)).astype(np.int32)
        features["masked_lm_weights"] = np.array([[1, 1, 1, 0]] * BATCH, np.float32)
        features["next_sentence_labels"] = rng.integers(0, 2, (BATCH, 1)).astype(np.int32)
    return features


# Every task registry.build_task_model knows; a task that fails to build fails its test rather than dropping out.
TASKS = ("classification", "regression", "tagging", "squad", "multiple_choice", "pretraining")


# XLA's CPU compile takes 8-15 s per task on 2 cores (~75 s for the file).
@pytest.mark.parametrize("task", TASKS)
def test_train_and_eval_steps_compile_with_xla(task, tmp_path):
    rng = np.random.default_rng(0)
    features = _features(task, rng)
    tf_keras.utils.set_random_seed(0)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")

    def model_fn():
        model = registry.build_task_model(task, _config(), num_labels=3)
        model.build_with_dummies()
        return model

    trainer = Trainer(strategy, model_fn, lambda: optimization.create_optimizer(1e-3, 10, 0), str(tmp_path),
                      TrainerSettings(BATCH, jit_compile=True, steps_per_execution=2, log_steps=2))
    dataset_fn = lambda context: tf.data.Dataset.from_tensors(features).repeat()  # noqa: E731
    before = [w.numpy().copy() for w in trainer.model.trainable_weights]
    summary = trainer.train(dataset_fn, num_train_steps=2, verbose=False)
    assert summary["global_step"] == 2
    assert np.isfinite(summary["train_history"][-1]["loss"])
    changed = sum(not np.array_equal(b, w.numpy()) for b, w in zip(before, trainer.model.trainable_weights))
    assert changed > len(before) // 2

    eval_fn = lambda context: tf.data.Dataset.from_tensors(features)  # noqa: E731
    outputs = trainer.predict(eval_fn)
    eager = trainer.model({k: tf.constant(v) for k, v in features.items()}, training=False)
    for name, value in eager.items():
        np.testing.assert_allclose(outputs[name], value.numpy(), atol=1e-4, err_msg=name)


class _HostOpClassifier(tasks.SequenceClassifier):
    """A classifier whose forward pass round-trips ids through strings, which XLA cannot compile."""

    def call(self, features, training=False):
        ids = tf.strings.to_number(tf.strings.as_string(features["input_ids"]), tf.int32)
        return super().call({**features, "input_ids": ids}, training=training)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_trainer_step_is_really_compiled_with_xla(jit_compile, tmp_path):
    """The check has teeth: the same model trains without --jit_compile and fails to compile with it."""
    features = _features("classification", np.random.default_rng(0))
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")

    def model_fn():
        model = _HostOpClassifier(_config(), num_labels=3)
        model.build_with_dummies()
        return model

    trainer = Trainer(strategy, model_fn, lambda: optimization.create_optimizer(1e-3, 10, 0), str(tmp_path),
                      TrainerSettings(BATCH, jit_compile=jit_compile, log_steps=1))
    dataset_fn = lambda context: tf.data.Dataset.from_tensors(features).repeat()  # noqa: E731
    if not jit_compile:
        assert trainer.train(dataset_fn, num_train_steps=1, verbose=False)["global_step"] == 1
        return
    with pytest.raises((tf.errors.InvalidArgumentError, tf.errors.UnimplementedError)):
        trainer.train(dataset_fn, num_train_steps=1, verbose=False)
