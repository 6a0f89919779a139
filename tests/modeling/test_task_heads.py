"""TokenTagger, SpanQA and MultipleChoice: HF-compatible variable names, shapes, losses, metrics, round trips."""
import numpy as np
import pytest
import tensorflow as tf
from transformers import BertConfig

from bert_tf.modeling import checkpoints, tasks
from bert_tf.tasks import registry

CONFIG = dict(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
              max_position_embeddings=32)


def config():
    return BertConfig(**CONFIG)


@pytest.mark.parametrize("task, num_labels", [("tagging", 5), ("squad", None), ("multiple_choice", 3)])
def test_variables_match_the_hugging_face_class(task, num_labels):
    model = registry.build_task_model(task, config(), num_labels).build_with_dummies()
    hf_model = model.hf_class(model.config)
    hf_model.build_in_name_scope()
    names = {checkpoints._relative_name(v.name): tuple(v.shape) for v in model.weights}
    hf_names = {checkpoints._relative_name(v.name): tuple(v.shape) for v in hf_model.weights}
    assert names == hf_names
    assert model.task == task


def features(batch=2, length=6):
    rng = np.random.default_rng(0)
    mask = np.ones((batch, length), np.int32)
    mask[1, 4:] = 0
    return {"input_ids": tf.constant(rng.integers(5, 50, (batch, length)), tf.int32),
            "attention_mask": tf.constant(mask), "token_type_ids": tf.zeros((batch, length), tf.int32)}


def test_tagger_loss_is_the_mean_over_labelled_words():
    tf.random.set_seed(0)
    model = tasks.TokenTagger(config(), num_labels=3).build_with_dummies()
    inputs = features()
    inputs["label_ids"] = tf.constant([[-100, 0, 2, -100, 1, -100], [-100, 1, -1, -100, -100, -100]])
    outputs = model(inputs, training=False)
    assert outputs["logits"].shape == (2, 6, 3)
    log_probs = tf.nn.log_softmax(outputs["logits"]).numpy()
    expected = [-(log_probs[0, 1, 0] + log_probs[0, 2, 2] + log_probs[0, 4, 1]) / 3, -log_probs[1, 1, 1]]
    np.testing.assert_allclose(model.per_example_loss(inputs, outputs).numpy(), expected, rtol=1e-5)
    values, weights = model.train_metrics(inputs, outputs)["accuracy"]
    assert weights.numpy().tolist() == [0, 1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0]
    predicted = outputs["logits"].numpy().argmax(-1)
    assert values.numpy()[1] == float(predicted[0, 1] == 0)


def test_span_qa_masks_padding_and_averages_start_end_losses():
    tf.random.set_seed(0)
    model = tasks.SpanQA(config()).build_with_dummies()
    inputs = features()
    inputs["start_positions"] = tf.constant([[1], [2]])
    inputs["end_positions"] = tf.constant([[3], [2]])
    outputs = model(inputs, training=False)
    assert outputs["start_logits"].shape == (2, 6)
    assert (outputs["start_logits"].numpy()[1, 4:] < -1000).all()
    start = tf.nn.log_softmax(outputs["start_logits"]).numpy()
    end = tf.nn.log_softmax(outputs["end_logits"]).numpy()
    expected = [-(start[0, 1] + end[0, 3]) / 2, -(start[1, 2] + end[1, 2]) / 2]
    np.testing.assert_allclose(model.per_example_loss(inputs, outputs).numpy(), expected, rtol=1e-5)


def test_multiple_choice_scores_each_choice_like_the_flattened_batch():
    tf.random.set_seed(0)
    model = tasks.MultipleChoice(config(), num_choices=3).build_with_dummies()
    flat = features(batch=6)
    inputs = {k: tf.reshape(v, [2, 3, 6]) for k, v in flat.items()}
    inputs["label_ids"] = tf.constant([[2], [0]])
    outputs = model(inputs, training=False)
    assert outputs["logits"].shape == (2, 3)
    pooled = model.bert(input_ids=flat["input_ids"], attention_mask=flat["attention_mask"],
                        token_type_ids=flat["token_type_ids"]).pooler_output
    np.testing.assert_allclose(outputs["logits"].numpy().reshape(-1), model.classifier(pooled).numpy()[:, 0],
                               rtol=1e-5, atol=1e-6)
    log_probs = tf.nn.log_softmax(outputs["logits"]).numpy()
    np.testing.assert_allclose(model.per_example_loss(inputs, outputs).numpy(),
                               [-log_probs[0, 2], -log_probs[1, 0]], rtol=1e-5)


@pytest.mark.parametrize("task, num_labels", [("tagging", 4), ("squad", None)])
def test_save_hf_then_load_weights_round_trip(tmp_path, task, num_labels):
    tf.random.set_seed(1)
    model = registry.build_task_model(task, config(), num_labels).build_with_dummies()
    path = checkpoints.save_hf(model, str(tmp_path / task), meta={"task": task})
    reloaded = registry.build_task_model(task, config(), num_labels).build_with_dummies()
    assert checkpoints.load_weights(reloaded, path) == []
    inputs = features()
    for key, value in model(inputs).items():
        np.testing.assert_allclose(reloaded(inputs)[key].numpy(), value.numpy(), rtol=1e-5, atol=1e-6)


def test_saved_tagger_and_qa_models_run_in_hugging_face(tmp_path):
    inputs = features()
    valid = inputs["attention_mask"].numpy().astype(bool)
    for model in (tasks.TokenTagger(config(), num_labels=4), tasks.SpanQA(config())):
        model.build_with_dummies()
        path = checkpoints.save_hf(model, str(tmp_path / model.task), meta={"task": model.task})
        hf_outputs = model.hf_class.from_pretrained(path)(**inputs)
        ours = model(inputs)
        if model.task == "tagging":
            np.testing.assert_allclose(hf_outputs.logits.numpy(), ours["logits"].numpy(), rtol=1e-5, atol=1e-5)
        else:
            # Ours pushes padding positions to -10000; the real positions agree.
            for key in ("start_logits", "end_logits"):
                np.testing.assert_allclose(getattr(hf_outputs, key).numpy()[valid], ours[key].numpy()[valid],
                                           rtol=1e-5, atol=1e-5)
