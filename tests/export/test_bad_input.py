"""Hostile input to the serving signatures: well-formed outputs, never a crash."""
import numpy as np
import pytest
import tensorflow as tf

LONG = ("word " * 20000)[:100000]
INVALID_UTF8 = b"caf\xe9 \xff\xfe ok"


@pytest.fixture(scope="module")
def load():
    import tensorflow_text  # noqa: F401

    cache = {}

    def get(path):
        if path not in cache:
            cache[path] = tf.saved_model.load(path).signatures["serving_default"]
        return cache[path]
    return get


def _call(fn, **inputs):
    return {k: v.numpy() for k, v in fn(**{k: tf.constant(v, tf.string) for k, v in inputs.items()}).items()}


def test_classifier_on_hostile_text(load, classifier_export):
    fn = load(classifier_export)
    texts = ["", "   \t\n ", LONG, INVALID_UTF8, "caf  ok", "word " * 40, "a"]
    out = _call(fn, text=texts)
    assert out["probabilities"].shape == (7, 3) and np.isfinite(out["logits"]).all()
    np.testing.assert_allclose(out["probabilities"].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out["logits"][1], out["logits"][0], atol=1e-6)  # whitespace-only == empty
    np.testing.assert_allclose(out["logits"][2], out["logits"][5], atol=1e-5)  # 100k chars truncated like 40 words
    np.testing.assert_allclose(out["logits"][3], out["logits"][4], atol=1e-5)  # bad bytes dropped, not fatal
    # Each row is what it would be alone: padding and batch-mates change nothing.
    for i, text in enumerate(texts):
        alone = _call(fn, text=[text])
        np.testing.assert_allclose(alone["logits"][0], out["logits"][i], atol=1e-5)
        assert alone["label"][0] == out["label"][i]


def test_empty_batch_gives_empty_outputs(load, exports):
    for task, inputs in (("classification", {"text": []}), ("tagging", {"text": []}),
                         ("squad", {"question": [], "context": []}), ("regression", {"text": [], "text_pair": []})):
        out = _call(load(exports[task]), **inputs)
        assert out and all(v.shape[0] == 0 for v in out.values()), task


def test_tagging_and_qa_on_hostile_text(load, exports):
    tagged = _call(load(exports["tagging"]), text=["", "  ", LONG, INVALID_UTF8, "\u200d"])
    assert tagged["tag"].shape == (5, 32) and np.isfinite(tagged["logits"]).all()
    assert tagged["word_start"][0].sum() == 0 and tagged["word_start"][1].sum() == 0
    assert tagged["word_start"][2].sum() == 30  # one piece per "word": 30 fit in 32 - 2 positions
    assert tagged["word_start"][3].sum() == 3  # "caf\ufffd" "\ufffd\ufffd" "ok": 3 words, none dropped
    assert tagged["word_start"][4].sum() == 1  # a word of nothing still gets its [UNK] position
    answered = _call(load(exports["squad"]), question=["", "who?", LONG, INVALID_UTF8],
                     context=["Ann wrote it.", "", LONG, INVALID_UTF8])
    assert answered["answer"].tolist()[1] == b""  # no context: the null answer
    assert answered["start_position"][1] == 0 and answered["end_position"][1] == 0
    assert np.isfinite(answered["score"]).all()
    for row in (0, 2, 3):
        assert answered["answer"][row] != b""
        assert answered["start_position"][row] <= answered["end_position"][row] < answered["start_position"][row] + 5


def test_pair_inputs_of_different_lengths_are_refused_clearly(load, exports):
    with pytest.raises(tf.errors.InvalidArgumentError, match="text and text_pair must have one entry per example"):
        _call(load(exports["regression"]), text=["a", "b"], text_pair=["c"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="question and context must have one entry per"):
        _call(load(exports["squad"]), question=["a"], context=[])
