"""BertPretrainingModel: TFBertForPreTraining's variable names, weights both ways, losses and metrics."""
import bert_tf  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from transformers import BertConfig

from bert_tf.modeling import checkpoints
from bert_tf.tasks import registry
from bert_tf.modeling.pretraining import BertPretrainingModel

VOCAB = 50


@pytest.fixture(scope="module")
def config():
    return BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0)


def _features(batch=3, seq=12, predictions=4, seed=0):
    rng = np.random.RandomState(seed)
    ids = rng.randint(5, VOCAB, (batch, seq)).astype(np.int32)
    positions = np.sort(rng.choice(np.arange(1, seq), (batch, predictions)), axis=1).astype(np.int32)
    weights = np.ones((batch, predictions), np.float32)
    weights[0, -1] = 0.0  # a padded prediction slot
    return {"input_ids": tf.constant(ids), "attention_mask": tf.ones((batch, seq), tf.int32),
            "token_type_ids": tf.zeros((batch, seq), tf.int32), "masked_lm_positions": tf.constant(positions),
            "masked_lm_ids": tf.constant(rng.randint(0, VOCAB, (batch, predictions)).astype(np.int32)),
            "masked_lm_weights": tf.constant(weights),
            "next_sentence_labels": tf.constant(rng.randint(0, 2, (batch, 1)).astype(np.int32))}


def test_names_match_tf_bert_for_pretraining_and_decoder_is_tied(config):
    from transformers import TFBertForPreTraining

    model = BertPretrainingModel(config).build_with_dummies()
    reference = TFBertForPreTraining(config)
    reference.build_in_name_scope()
    ours = sorted(checkpoints._relative_name(v.name) for v in model.weights)
    theirs = sorted(checkpoints._relative_name(v.name) for v in reference.weights)
    assert ours == theirs
    assert "mlm___cls/predictions/transform/LayerNorm/gamma" in ours
    assert "nsp___cls/seq_relationship/kernel" in ours
    # Tied: the vocab projection has no weight of its own, only an output bias.
    assert [n for n in ours if n.startswith("mlm___cls") and "transform" not in n] == ["mlm___cls/predictions/bias"]
    assert registry.build_task_model("pretraining", config).hf_class_name == "TFBertForPreTraining"


def test_gathered_logits_equal_tf_bert_for_pretraining_after_save(tmp_path, config):
    from transformers import TFBertForPreTraining

    tf_keras.utils.set_random_seed(1)
    model = BertPretrainingModel(config).build_with_dummies()
    # Non-zero bias so the test sees it travel.
    model.mlm.predictions.bias.assign(np.linspace(-1, 1, VOCAB).astype(np.float32))
    features = _features()
    outputs = model(features)
    assert outputs["mlm_logits"].shape == (3, 4, VOCAB) and outputs["nsp_logits"].shape == (3, 2)
    path = str(tmp_path / "pretrained")
    checkpoints.save_hf(model, path)
    reference = TFBertForPreTraining.from_pretrained(path)
    ref = reference(input_ids=features["input_ids"], attention_mask=features["attention_mask"],
                    token_type_ids=features["token_type_ids"])
    expected = tf.gather(ref.prediction_logits, features["masked_lm_positions"], batch_dims=1)
    np.testing.assert_allclose(outputs["mlm_logits"], expected, atol=1e-5)
    np.testing.assert_allclose(outputs["nsp_logits"], ref.seq_relationship_logits, atol=1e-5)
    # And back: a fresh model loads every variable from the saved directory.
    loaded = BertPretrainingModel(config)
    assert checkpoints.load_weights(loaded, path) == []
    np.testing.assert_allclose(loaded(features)["mlm_logits"], outputs["mlm_logits"], atol=1e-6)


def test_loss_and_metrics_match_numpy(config):
    model = BertPretrainingModel(config).build_with_dummies()
    features = _features(seed=3)
    outputs = model(features)
    logits = outputs["mlm_logits"].numpy()
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    labels = features["masked_lm_ids"].numpy()
    weights = features["masked_lm_weights"].numpy()
    token_nll = -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    nsp = outputs["nsp_logits"].numpy()
    nsp_log = nsp - np.log(np.exp(nsp).sum(-1, keepdims=True))
    nsp_labels = features["next_sentence_labels"].numpy()[:, 0]
    nsp_nll = -nsp_log[np.arange(3), nsp_labels]
    expected = (token_nll * weights).sum(1) / weights.sum(1) + nsp_nll
    np.testing.assert_allclose(model.per_example_loss(features, outputs), expected, rtol=1e-5)

    metrics = {name: tf_keras.metrics.Mean() for name in model.train_metric_names}
    for name, (values, sample_weight) in model.train_metrics(features, outputs).items():
        metrics[name].update_state(values, sample_weight=sample_weight)
    np.testing.assert_allclose(metrics["mlm_loss"].result(), (token_nll * weights).sum() / weights.sum(), rtol=1e-5)
    correct = (logits.argmax(-1) == labels).astype(np.float32)
    np.testing.assert_allclose(metrics["mlm_accuracy"].result(), (correct * weights).sum() / weights.sum(), rtol=1e-6)
    np.testing.assert_allclose(metrics["nsp_loss"].result(), nsp_nll.mean(), rtol=1e-5)
    np.testing.assert_allclose(metrics["nsp_accuracy"].result(), (nsp.argmax(-1) == nsp_labels).mean(), rtol=1e-6)


def test_logits_depend_only_on_gathered_positions(config):
    """Gather-then-project: the same position gives the same logits whichever slot asks for it."""
    model = BertPretrainingModel(config).build_with_dummies()
    features = _features(batch=1, predictions=3)
    features["masked_lm_positions"] = tf.constant([[2, 5, 2]], tf.int32)
    logits = model(features)["mlm_logits"].numpy()[0]
    np.testing.assert_allclose(logits[0], logits[2], atol=1e-6)
    assert np.abs(logits[0] - logits[1]).max() > 1e-4
