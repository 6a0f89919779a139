"""The loader reads every format exactly and refuses, naming what did not match, anything else.

Formats: Hugging Face TF directory, safetensors directory, google-research TF1 checkpoint, TF Model
Garden TF2 checkpoint (fixtures written by Model Garden itself, tests/fixtures/make_model_garden_bert.py),
keras-hub preset. Each is loaded into the 2-layer model it holds (exactly), and into a 1- and a
3-layer model (refused).
"""
import json
import math
import os
import re

import bert_tf  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from transformers import BertConfig

from bert_tf.errors import UserError
from bert_tf.modeling import checkpoints, keras_hub_format
from bert_tf.modeling.pretraining import BertPretrainingModel
from bert_tf.modeling.tasks import BertTaskModel, SequenceClassifier

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "model_garden_bert")
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"word{i}" for i in range(95)]


def tiny(layers=2, **overrides):
    return BertConfig(**dict(dict(vocab_size=100, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=64), **overrides))


def named(model):
    return {checkpoints._relative_name(v.name): v.numpy() for v in model.weights}


def _pt_key(name):
    """Our variable name -> Hugging Face PyTorch key and whether the value is transposed (written
    independently of the loader's own mapping)."""
    key = name.replace("layer_._", "layer/").replace("mlm___cls/", "cls/").replace("nsp___cls/", "cls/")
    if key.endswith(("position_embeddings/embeddings", "token_type_embeddings/embeddings")):
        return key[: -len("embeddings")].replace("/", ".") + "weight", False
    for ours, theirs in (("/gamma", ".weight"), ("/beta", ".bias"), ("/kernel", ".weight")):
        if key.endswith(ours):
            return key[: -len(ours)].replace("/", ".") + theirs, ours == "/kernel"
    return key.replace("/", "."), False


def _google_name(name):
    name = name.replace("/layer_._", "/layer_")
    for ours, google in (("word_embeddings/weight", "word_embeddings"),
                         ("position_embeddings/embeddings", "position_embeddings"),
                         ("token_type_embeddings/embeddings", "token_type_embeddings")):
        name = name.replace(ours, google)
    return name


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """{format: (path, our weights)}: one seeded 2-layer encoder written in each format, plus the
    Model Garden fixture (its weights are checked against Model Garden's outputs instead)."""
    root = tmp_path_factory.mktemp("formats")
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    config = tiny()
    tf_keras.utils.set_random_seed(3)
    model = BertTaskModel(config).build_with_dummies()
    rng = np.random.RandomState(3)
    for variable in model.weights:  # no ones or zeros: a swapped gamma/beta cannot hide
        variable.assign(rng.normal(0, 0.3, variable.shape).astype(np.float32))
    weights = named(model)
    found = {"hf_tf": (checkpoints.save_hf(model, str(root / "hf"), vocab_file=str(vocab)), weights)}

    from safetensors.numpy import save_file

    st = root / "safetensors"
    st.mkdir()
    state = {}
    for name, value in weights.items():
        key, transpose = _pt_key(name)
        state[key] = np.ascontiguousarray(value.T if transpose else value)
    state["bert.embeddings.position_ids"] = np.arange(64, dtype=np.int64)[None]
    save_file(state, str(st / "model.safetensors"))
    (st / "config.json").write_text(config.to_json_string())
    (st / "vocab.txt").write_text(vocab.read_text())
    found["safetensors"] = (str(st), weights)

    google = root / "tf1"
    google.mkdir()
    names = [_google_name(n) for n in weights] + ["global_step"]
    values = [tf.constant(v) for v in weights.values()] + [tf.constant(7, tf.int64)]
    tf.raw_ops.SaveV2(prefix=str(google / "bert_model.ckpt"), tensor_names=names,
                      shape_and_slices=[""] * len(names), tensors=values)
    (google / "bert_config.json").write_text(config.to_json_string())
    (google / "vocab.txt").write_text(vocab.read_text())
    found["tf1"] = (str(google / "bert_model.ckpt"), weights)

    keras_hub_format.write_preset(model, str(root / "keras_hub"), str(vocab), True)
    found["keras_hub"] = (str(root / "keras_hub"), weights)
    found["tf2"] = (os.path.join(FIXTURES, "encoder", "bert_model.ckpt"), None)
    return found


FORMATS = ("hf_tf", "safetensors", "tf1", "tf2", "keras_hub")


@pytest.mark.parametrize("kind", FORMATS)
def test_each_format_loads_every_weight_exactly(sources, kind):
    path, weights = sources[kind]
    assert checkpoints.source_kind(path) == kind
    config = checkpoints.load_checkpoint_config(path)
    assert (config.num_hidden_layers, config.hidden_size, config.vocab_size) == (2, 32, 100)
    # google-research/bert, the Model Garden and keras-hub all compute GELU's tanh form.
    assert config.hidden_act == ("gelu" if kind in ("hf_tf", "safetensors") else "gelu_new")
    model = BertTaskModel(config)
    assert checkpoints.load_weights(model, path) == []
    if weights is not None:
        loaded = named(model)
        assert loaded.keys() == weights.keys()
        for name, value in weights.items():
            np.testing.assert_array_equal(loaded[name], value, err_msg=name)
    vocab, lower = checkpoints.tokenizer_settings(path)
    assert vocab and len(open(vocab).read().split()) == 100
    assert lower == (True if kind in ("hf_tf", "keras_hub") else None)


@pytest.mark.parametrize("kind", FORMATS)
@pytest.mark.parametrize("layers", (1, 3))
def test_a_two_layer_checkpoint_into_another_depth_is_refused(sources, kind, layers):
    path, _ = sources[kind]
    model = BertTaskModel(tiny(layers)).build_with_dummies()
    before = named(model)
    with pytest.raises(UserError) as error:
        checkpoints.load_weights(model, path)
    message = str(error.value)
    if layers == 3:
        expected = (f"--init_checkpoint {path} does not fit the model: 39 of 55 encoder weights matched; model weights "
                    "without a match: bert/encoder/layer_._2/attention/self/query/kernel, "
                    "bert/encoder/layer_._2/attention/self/query/bias, bert/encoder/layer_._2/attention/self/key/kernel; "
                    "checkpoint weights without a place: none: leave --bert_config_file out to use the checkpoint's "
                    "own config, or pass --allow_partial_init to train the unmatched weights from scratch")
    else:
        expected = (f"--init_checkpoint {path} does not fit the model: 23 of 23 encoder weights matched; model weights "
                    "without a match: none; checkpoint weights without a place: "
                    "bert/encoder/layer_._1/attention/output/LayerNorm/beta, "
                    "bert/encoder/layer_._1/attention/output/LayerNorm/gamma, "
                    "bert/encoder/layer_._1/attention/output/dense/bias: leave --bert_config_file out to use the "
                    "checkpoint's own config, or pass --allow_partial_init to train the unmatched weights from scratch")
    assert message == expected
    # Nothing was assigned: the refused model keeps its own initial values.
    after = named(model)
    assert all(np.array_equal(before[name], after[name]) for name in before)


def test_partial_init_is_an_explicit_choice(sources):
    path, weights = sources["hf_tf"]
    model = BertTaskModel(tiny(3))
    assert checkpoints.load_weights(model, path, allow_partial_init=True) == []
    loaded = named(model)
    for name, value in weights.items():
        np.testing.assert_array_equal(loaded[name], value, err_msg=name)
    # The third layer is the model's own (random) start, not the checkpoint's.
    assert "bert/encoder/layer_._2/output/dense/kernel" not in weights


def test_hidden_size_mismatch_names_the_shapes(sources):
    path, _ = sources["safetensors"]
    with pytest.raises(UserError) as error:
        checkpoints.load_weights(BertTaskModel(tiny(hidden_size=64, intermediate_size=64)), path)
    assert str(error.value).startswith(
        f"--init_checkpoint {path} does not fit the model: 2 of 39 encoder weights matched; model weights without a "
        "match: bert/embeddings/word_embeddings/weight (100, 32) vs (100, 64), "
        "bert/embeddings/token_type_embeddings/embeddings (2, 32) vs (2, 64), ")


def test_wrong_architecture_is_refused(tmp_path):
    """A RoBERTa-style safetensors file and a TF2 checkpoint of an unrelated Keras model: nothing matches."""
    from safetensors.numpy import save_file

    rng = np.random.RandomState(0)
    save_file({"roberta.embeddings.word_embeddings.weight": rng.rand(100, 32).astype(np.float32),
               "roberta.encoder.layer.0.attention.self.query.weight": rng.rand(32, 32).astype(np.float32)},
              str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(tiny().to_json_string())
    with pytest.raises(UserError) as error:
        checkpoints.load_weights(BertTaskModel(tiny()), str(tmp_path))
    assert str(error.value) == (
        f"--init_checkpoint {tmp_path} does not fit the model: 0 of 39 encoder weights matched; model weights without "
        "a match: bert/embeddings/word_embeddings/weight, bert/embeddings/token_type_embeddings/embeddings, "
        "bert/embeddings/position_embeddings/embeddings; checkpoint weights without a place: "
        "bert/roberta/embeddings/word_embeddings/weight, bert/roberta/encoder/layer_._0/attention/self/query/kernel: "
        "it is not a BERT checkpoint this loader reads (or not BERT at all): convert it to a Hugging Face directory "
        "first")

    other = tmp_path / "tf2"
    dense = tf_keras.layers.Dense(4)
    dense.build((None, 3))
    tf.train.Checkpoint(model=dense).write(str(other / "ckpt"))
    (other / "bert_config.json").write_text(tiny().to_json_string())
    assert checkpoints.source_kind(str(other)) == "tf2"
    with pytest.raises(UserError, match=r"0 of 39 encoder weights matched; .* checkpoint weights without a place: "
                                        r"model/bias, model/kernel: it is not a BERT checkpoint"):
        checkpoints.load_weights(BertTaskModel(tiny()), str(other))


def test_missing_pooler_is_refused_and_missing_heads_are_reported(tmp_path, sources):
    from safetensors.numpy import load_file, save_file

    path, _ = sources["safetensors"]
    state = {k: v for k, v in load_file(os.path.join(path, "model.safetensors")).items() if "pooler" not in k}
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(tiny().to_json_string())
    with pytest.raises(UserError, match=r"37 of 39 encoder weights matched; model weights without a match: "
                                        r"bert/pooler/dense/kernel, bert/pooler/dense/bias; checkpoint weights"):
        checkpoints.load_weights(SequenceClassifier(tiny(), num_labels=3), str(tmp_path))
    # A full encoder into a classifier: the head is new, and said so.
    assert checkpoints.load_weights(SequenceClassifier(tiny(), num_labels=3), path) == ["classifier/kernel",
                                                                                       "classifier/bias"]


# ---- TF Model Garden: our forward pass against a numpy one and Model Garden's own outputs ----------------


def _layer_norm(x, gamma, beta, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + eps) * gamma + beta


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def _model_garden_weights(prefix):
    """The raw Model Garden tensors (per-head attention shapes as stored), by role."""
    reader = tf.train.load_checkpoint(prefix)
    raw = {n[: -len("/.ATTRIBUTES/VARIABLE_VALUE")]: reader.get_tensor(n).astype(np.float64)
           for n in reader.get_variable_to_shape_map() if n.endswith("/.ATTRIBUTES/VARIABLE_VALUE")}
    if "encoder/layer_with_weights-0/embeddings" in raw:  # functional BertEncoder, 2 layers
        w = lambda k: f"encoder/layer_with_weights-{k}"  # noqa: E731
        roles = {"word": w(0) + "/embeddings", "position": w(1) + "/embeddings", "type": w(2) + "/embeddings",
                 "norm": w(3), "layers": [w(4), w(5)], "pooler": w(6)}
    else:
        roles = {"word": "masked_lm/embedding_table", "position": "encoder/_position_embedding_layer/embeddings",
                 "type": "encoder/_type_embedding_layer/embeddings", "norm": "encoder/_embedding_norm_layer",
                 "layers": ["encoder/_transformer_layers/0", "encoder/_transformer_layers/1"],
                 "pooler": "encoder/_pooler_layer"}
    return raw, roles


def numpy_model_garden(prefix, ids, mask, types, positions=None):
    """Model Garden's BERT (post-LayerNorm, tanh GELU) in float64 numpy, on its own weight layout."""
    raw, r = _model_garden_weights(prefix)
    x = raw[r["word"]][ids] + raw[r["position"]][: ids.shape[1]][None] + raw[r["type"]][types]
    x = _layer_norm(x, raw[r["norm"] + "/gamma"], raw[r["norm"] + "/beta"])
    bias = (1.0 - mask[:, None, None, :]) * -1e9
    for layer in r["layers"]:
        a = layer + "/_attention_layer/"
        q, k, v = (np.einsum("bsh,hnd->bsnd", x, raw[a + f"_{n}_dense/kernel"]) + raw[a + f"_{n}_dense/bias"]
                   for n in ("query", "key", "value"))
        scores = np.einsum("bqnd,bknd->bnqk", q, k) / math.sqrt(q.shape[-1]) + bias
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = np.einsum("bnqk,bknd->bqnd", probs, v)
        attention = np.einsum("bqnd,ndh->bqh", context, raw[a + "_output_dense/kernel"]) + raw[a + "_output_dense/bias"]
        x = _layer_norm(x + attention, raw[layer + "/_attention_layer_norm/gamma"],
                        raw[layer + "/_attention_layer_norm/beta"])
        inner = _gelu_tanh(x @ raw[layer + "/_intermediate_dense/kernel"] + raw[layer + "/_intermediate_dense/bias"])
        x = _layer_norm(x + inner @ raw[layer + "/_output_dense/kernel"] + raw[layer + "/_output_dense/bias"],
                        raw[layer + "/_output_layer_norm/gamma"], raw[layer + "/_output_layer_norm/beta"])
    pooled = np.tanh(x[:, 0] @ raw[r["pooler"] + "/kernel"] + raw[r["pooler"] + "/bias"])
    outputs = {"sequence_output": x, "pooled_output": pooled}
    if positions is not None:
        h = np.take_along_axis(x, positions[..., None], axis=1)
        h = _gelu_tanh(h @ raw["masked_lm/dense/kernel"] + raw["masked_lm/dense/bias"])
        h = _layer_norm(h, raw["masked_lm/layer_norm/gamma"], raw["masked_lm/layer_norm/beta"])
        outputs["mlm_logits"] = h @ raw[r["word"]].T + raw["masked_lm/output_bias.Sbias"]
    return outputs


@pytest.mark.parametrize("layout", ("encoder", "pretrainer"))
def test_model_garden_checkpoint_computes_what_model_garden_computed(layout):
    directory = os.path.join(FIXTURES, layout)
    prefix = os.path.join(directory, "bert_model.ckpt")
    expected = np.load(os.path.join(directory, "expected.npz"))
    ids, mask, types = expected["input_ids"], expected["input_mask"], expected["segment_ids"]
    positions = expected["masked_lm_positions"] if layout == "pretrainer" else None
    config = checkpoints.load_checkpoint_config(directory)
    model = BertPretrainingModel(config) if positions is not None else BertTaskModel(config)
    # BertPretrainerV2 without classification heads has no next-sentence head: reported, trained from scratch.
    assert checkpoints.load_weights(model, directory) == ([] if positions is None else [
        "nsp___cls/seq_relationship/kernel", "nsp___cls/seq_relationship/bias"])
    features = {"input_ids": tf.constant(ids), "attention_mask": tf.constant(mask), "token_type_ids": tf.constant(types)}
    reference = numpy_model_garden(prefix, ids, mask.astype(np.float64), types, positions)
    encoded = model.bert(**features)
    ours = {"sequence_output": encoded.last_hidden_state.numpy(), "pooled_output": encoded.pooler_output.numpy()}
    if positions is not None:
        ours["mlm_logits"] = model(dict(features, masked_lm_positions=tf.constant(positions)))["mlm_logits"].numpy()
    keep = mask.astype(bool)
    for name, value in ours.items():
        rows = (lambda a: a[keep]) if name == "sequence_output" else (lambda a: a)
        assert np.abs(rows(value) - rows(reference[name])).max() < 1e-5, name
        assert np.abs(rows(value) - rows(expected[name])).max() < 1e-5, name
        # The values are far from trivial: a wrong mapping could not pass by accident.
        assert np.abs(rows(reference[name])).max() > 0.5, name
