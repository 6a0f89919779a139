"""LoRA and --freeze_encoder: what trains, merging, and the run_classifier path end to end."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from bert_tf.errors import UserError
from bert_tf.modeling import checkpoints, lora
from bert_tf.modeling.tasks import SequenceClassifier, TokenTagger
from tests import workloads


def _features(seed=0, batch=3, length=10, vocab=2000):
    ids = np.random.RandomState(seed).randint(5, vocab, (batch, length)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[0, 6:] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


@pytest.fixture
def classifier(tiny_config, tiny_checkpoint):
    tf_keras.utils.set_random_seed(0)
    model = SequenceClassifier(tiny_config, num_labels=3).build_with_dummies()
    checkpoints.load_weights(model, tiny_checkpoint)
    return model


def test_lora_trains_only_low_rank_matrices_and_head(classifier, tiny_config):
    before = classifier(_features())["logits"].numpy()
    lora.apply_lora(classifier, rank=4, alpha=8, seed=1)
    names = sorted(v.name.split("/", 1)[1] for v in classifier.trainable_variables)
    layers, hidden = tiny_config.num_hidden_layers, tiny_config.hidden_size
    expected = sorted([f"bert/encoder/layer_._{i}/attention/self/{p}/lora_{m}:0"
                       for i in range(layers) for p in ("query", "value") for m in "ab"]
                      + ["classifier/kernel:0", "classifier/bias:0"])
    assert names == expected
    count = sum(int(np.prod(v.shape)) for v in classifier.trainable_variables)
    assert count == layers * 2 * (hidden * 4 + 4 * hidden) + hidden * 3 + 3
    # B starts at zero: the wrapped model computes exactly what the pretrained one did.
    np.testing.assert_array_equal(classifier(_features())["logits"].numpy(), before)


def test_merged_model_equals_lora_model(classifier):
    base = classifier(_features())["logits"].numpy()
    lora.apply_lora(classifier, rank=4, alpha=8, seed=1)
    for _, _, layer in lora.lora_layers(classifier):
        layer.lora_b.assign(tf.random.stateless_normal(layer.lora_b.shape, seed=[1, 2]) * 0.5)
    with_lora = classifier(_features())["logits"].numpy()
    lora.merge_lora(classifier)
    assert lora.lora_layers(classifier) == [] and not any("lora" in v.name for v in classifier.weights)
    merged = classifier(_features())["logits"].numpy()
    assert np.abs(with_lora - base).max() > 1e-3  # the update is real, so the comparison means something
    np.testing.assert_allclose(merged, with_lora, atol=1e-5)


def test_save_hf_writes_merged_weights_without_lora_variables(classifier, tmp_path, tiny_config):
    lora.apply_lora(classifier, rank=2, alpha=4, seed=1)
    for _, _, layer in lora.lora_layers(classifier):
        layer.lora_b.assign(tf.ones(layer.lora_b.shape) * 0.1)
    expected = classifier(_features())["logits"].numpy()
    path = checkpoints.save_hf(classifier, str(tmp_path / "model"), meta={"labels": ["a", "b", "c"]})
    reloaded = SequenceClassifier(tiny_config, num_labels=3).build_with_dummies()
    checkpoints.load_weights(reloaded, path, strict_heads=True)
    np.testing.assert_allclose(reloaded(_features())["logits"].numpy(), expected, atol=1e-5)


def test_training_steps_change_only_lora_and_head(classifier):
    lora.apply_lora(classifier, rank=4, alpha=8, seed=1)
    start = {v.name: v.numpy().copy() for v in classifier.weights}
    optimizer = tf_keras.optimizers.Adam(1e-2)
    features = _features()
    features["label_ids"] = np.array([0, 1, 2], np.int32)
    for _ in range(3):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(classifier.per_example_loss(features, classifier(features, training=True)))
        variables = classifier.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    changed = sorted(v.name for v in classifier.weights if not np.array_equal(v.numpy(), start[v.name]))
    assert changed == sorted(v.name for v in classifier.trainable_variables)


def test_freeze_encoder_trains_the_head_only(tiny_config):
    model = lora.freeze_encoder(TokenTagger(tiny_config, num_labels=5))
    assert sorted(v.name.split("/", 1)[1] for v in model.trainable_variables) == \
        ["classifier/bias:0", "classifier/kernel:0"]


def test_lora_and_freeze_together_is_a_user_error(tiny_config):
    with pytest.raises(UserError, match="exclude each other"):
        lora.apply_peft(SequenceClassifier(tiny_config, num_labels=2), lora_rank=4, freeze=True)


def test_run_classifier_with_lora_saves_merged_plain_weights(tmp_path, tiny_checkpoint, flag_values):
    from bert_tf.jobs import classifier as job

    data = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "data", "sentiment",
                        "dev.tsv")
    out = str(tmp_path / "run")
    fv = flag_values(job.define_flags, [
        f"--init_checkpoint={tiny_checkpoint}", f"--train_file={data}", f"--output_dir={out}", "--do_train",
        "--max_seq_length=24", "--train_batch_size=8", "--num_train_steps=4", "--learning_rate=1e-2",
        "--max_train_examples=64", "--lora_rank=2", "--log_steps=2", "--save_checkpoints_steps=100"])
    job.run(fv)
    init = workloads.classifier_weights(tiny_checkpoint)
    trained = workloads.classifier_weights(os.path.join(out, "model"), strict_heads=True)
    changed = sorted(name for name, value in trained.items()
                     if name.startswith("bert/") and not np.array_equal(value, init[name]))
    # Only the merged query/value kernels moved in the encoder (biases and all else stayed frozen).
    assert changed == sorted(f"bert/encoder/layer_._{i}/attention/self/{p}/kernel:0"
                             for i in range(2) for p in ("query", "value"))
