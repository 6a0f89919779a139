"""Checkpoint interop: google-research TF1 checkpoints round-trip exactly; real MiniLM weights compute right."""
import json
import math
import os

import bert_tf  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from transformers import BertConfig

from bert_tf.errors import UserError
from bert_tf.jobs import convert
from bert_tf.modeling import checkpoints
from bert_tf.modeling.pretraining import BertPretrainingModel
from bert_tf.modeling.tasks import BertTaskModel


def _google_name(name):
    """Our (Hugging Face TF) variable name -> google-research/bert's, and whether to transpose."""
    name = name.replace("/layer_._", "/layer_")
    for ours, google in (("word_embeddings/weight", "word_embeddings"),
                         ("position_embeddings/embeddings", "position_embeddings"),
                         ("token_type_embeddings/embeddings", "token_type_embeddings"),
                         ("mlm___cls/predictions/bias", "cls/predictions/output_bias"),
                         ("mlm___cls/", "cls/"),
                         ("nsp___cls/seq_relationship/kernel", "cls/seq_relationship/output_weights"),
                         ("nsp___cls/seq_relationship/bias", "cls/seq_relationship/output_bias")):
        name = name.replace(ours, google)
    # google stores the NSP weights as [2, hidden] (already "PyTorch-oriented"); TF2 as [hidden, 2].
    return name, name == "cls/seq_relationship/output_weights"


@pytest.fixture(scope="module")
def tf1_checkpoint(tmp_path_factory, vocab_file):
    """A google-research/bert style directory written from a seeded model's known weights."""
    config = BertConfig(vocab_size=len(open(vocab_file).read().splitlines()), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    tf_keras.utils.set_random_seed(5)
    model = BertPretrainingModel(config).build_with_dummies()
    rng = np.random.RandomState(5)
    for variable in model.weights:  # no zeros or ones: every bias and LayerNorm value is distinctive
        variable.assign(rng.normal(0, 0.05, variable.shape).astype(np.float32))
    directory = tmp_path_factory.mktemp("google_bert")
    names, values, known = [], [], {}
    for variable in model.weights:
        relative = checkpoints._relative_name(variable.name)
        name, transpose = _google_name(relative)
        value = variable.numpy().T if transpose else variable.numpy()
        names.append(name)
        values.append(tf.constant(value))
        known[relative] = variable.numpy()
    # Optimizer slots and the step counter, as google's checkpoints carry them: must be ignored.
    names += ["global_step", "bert/embeddings/word_embeddings/adam_m"]
    values += [tf.constant(1000, tf.int64), tf.zeros_like(values[0])]
    prefix = str(directory / "bert_model.ckpt")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=values)
    (directory / "bert_config.json").write_text(json.dumps(
        {k: getattr(config, k) for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                         "intermediate_size", "hidden_act", "hidden_dropout_prob",
                                         "attention_probs_dropout_prob", "max_position_embeddings",
                                         "type_vocab_size", "initializer_range")}))
    (directory / "vocab.txt").write_text(open(vocab_file).read())
    return prefix, known, config


def test_tf1_checkpoint_round_trips_exactly(tmp_path, flag_values, tf1_checkpoint):
    prefix, known, config = tf1_checkpoint
    names = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
    assert names["cls/seq_relationship/output_weights"] == [2, 32]
    assert "bert/encoder/layer_0/attention/self/query/kernel" in names

    model = BertPretrainingModel(config)
    assert checkpoints.load_weights(model, prefix) == []
    loaded = {checkpoints._relative_name(v.name): v.numpy() for v in model.weights}
    assert loaded.keys() == known.keys()
    for name, value in known.items():
        np.testing.assert_array_equal(loaded[name], value, err_msg=name)

    output = str(tmp_path / "hf")
    result = convert.run(flag_values(convert.define_flags, [f"--init_checkpoint={prefix}", f"--output_dir={output}"]))
    assert result["heads"] and result["missing"] == []
    assert {"config.json", "tf_model.h5", "vocab.txt", "bert_tf.json"} <= set(os.listdir(output))
    from transformers import TFBertForPreTraining

    hf = TFBertForPreTraining.from_pretrained(output)
    for variable in hf.weights:
        name = checkpoints._relative_name(variable.name)
        np.testing.assert_array_equal(variable.numpy(), known[name], err_msg=name)
    # The converted directory converts again (HF TF source) to the same weights.
    again = str(tmp_path / "again")
    assert convert.run(flag_values(convert.define_flags, [f"--init_checkpoint={output}",
                                                          f"--output_dir={again}"]))["heads"]
    second = TFBertForPreTraining.from_pretrained(again)
    for a, b in zip(hf.weights, second.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def _layer_norm(x, gamma, beta, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


_erf = np.vectorize(math.erf)


def numpy_bert(state, config, ids, mask):
    """A from-scratch float64 BERT encoder forward pass over a PyTorch-layout state dict."""
    w = {k: v.astype(np.float64) for k, v in state.items() if v.dtype.kind == "f"}
    seq = ids.shape[1]
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:seq][None] + \
        w["embeddings.token_type_embeddings.weight"][np.zeros_like(ids)]
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    heads = config["num_attention_heads"]
    size = config["hidden_size"] // heads
    bias = (1.0 - mask[:, None, None, :]) * -1e9
    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."

        def dense(h, name):
            return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        def split(h):
            return h.reshape(h.shape[0], seq, heads, size).transpose(0, 2, 1, 3)

        q, k, v = (split(dense(x, f"attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size) + bias
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(x.shape)
        x = _layer_norm(x + dense(context, "attention.output.dense"), w[p + "attention.output.LayerNorm.weight"],
                        w[p + "attention.output.LayerNorm.bias"])
        inner = dense(x, "intermediate.dense")
        inner = 0.5 * inner * (1.0 + _erf(inner / math.sqrt(2.0)))
        x = _layer_norm(x + dense(inner, "output.dense"), w[p + "output.LayerNorm.weight"],
                        w[p + "output.LayerNorm.bias"])
    return x


def test_minilm_safetensors_match_numpy_reference(tmp_path, flag_values, minilm_dir):
    from safetensors.numpy import load_file

    from bert_tf.tokenization import HostTokenizer

    config = checkpoints.load_checkpoint_config(minilm_dir)
    model = BertTaskModel(config)
    checkpoints.load_weights(model, minilm_dir)
    tokenizer = HostTokenizer(os.path.join(minilm_dir, "vocab.txt"))
    features, _ = tokenizer.encode(["A man is playing a guitar.", "Pretraining BERT on TPUs is fast!"],
                                   max_seq_length=16)
    outputs = model({k2: tf.constant(features[k1]) for k1, k2 in
                     (("input_ids", "input_ids"), ("input_mask", "attention_mask"), ("segment_ids", "token_type_ids"))})
    state = load_file(os.path.join(minilm_dir, "model.safetensors"))
    with open(os.path.join(minilm_dir, "config.json")) as f:
        raw_config = json.load(f)
    expected = numpy_bert(state, raw_config, features["input_ids"], features["input_mask"].astype(np.float64))
    mask = features["input_mask"].astype(bool)
    np.testing.assert_allclose(outputs["sequence_output"].numpy()[mask], expected[mask], atol=1e-4)
    # Sanity: a real model's contextual vectors are not trivially small.
    assert np.abs(expected[mask]).max() > 1.0

    # No pretraining heads in this checkpoint: conversion writes the encoder.
    output = str(tmp_path / "minilm_hf")
    result = convert.run(flag_values(convert.define_flags, [f"--init_checkpoint={minilm_dir}",
                                                            f"--output_dir={output}"]))
    assert not result["heads"] and os.path.exists(os.path.join(output, "vocab.txt"))
    from transformers import TFBertModel

    converted = TFBertModel.from_pretrained(output)
    again = converted(input_ids=tf.constant(features["input_ids"]),
                      attention_mask=tf.constant(features["input_mask"])).last_hidden_state.numpy()
    np.testing.assert_allclose(again[mask], expected[mask], atol=1e-4)


MODEL_GARDEN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures",
                            "model_garden_bert", "encoder")


@pytest.fixture
def model_garden_copy(tmp_path):
    """The Model Garden encoder fixture, copied: conversions write next to it."""
    import shutil

    return shutil.copytree(MODEL_GARDEN, str(tmp_path / "mg"))


def test_keras_hub_preset_both_ways(tmp_path, flag_values, model_garden_copy):
    """TF2 checkpoint -> keras-hub preset that keras-hub's own classes load -> Hugging Face directory."""
    import keras_hub

    expected = np.load(os.path.join(MODEL_GARDEN, "expected.npz"))
    preset = str(tmp_path / "preset")
    result = convert.run(flag_values(convert.define_flags, [f"--init_checkpoint={model_garden_copy}",
                                                            f"--output_dir={preset}", "--output_format=keras_hub"]))
    assert result["source_format"] == "tf2" and result["max_abs_diff"] < 1e-5 and "note" not in result
    assert result["do_lower_case"] is True  # no tokenizer config: inferred from the all-lower-case vocab

    backbone = keras_hub.models.BertBackbone.from_preset(preset)
    keep = expected["input_mask"].astype(bool)
    theirs = backbone({"token_ids": expected["input_ids"], "segment_ids": expected["segment_ids"],
                       "padding_mask": expected["input_mask"]})
    # Against what Model Garden itself computed when it wrote the checkpoint.
    assert np.abs(theirs["sequence_output"].numpy()[keep] - expected["sequence_output"][keep]).max() < 1e-4
    assert np.abs(theirs["pooled_output"].numpy() - expected["pooled_output"]).max() < 1e-4
    classifier = keras_hub.models.BertTextClassifier.from_preset(preset, num_classes=3)
    logits = classifier(classifier.preprocessor(["word1 word2 word3", "word7"])).numpy()
    assert logits.shape == (2, 3) and np.isfinite(logits).all()
    np.testing.assert_array_equal(classifier.backbone.token_embedding.embeddings.numpy(),
                                  backbone.token_embedding.embeddings.numpy())

    # And back: the preset is an --init_checkpoint like any other.
    hf = str(tmp_path / "hf")
    back = convert.run(flag_values(convert.define_flags, [f"--init_checkpoint={preset}", f"--output_dir={hf}"]))
    assert back["source_format"] == "keras_hub" and back["matched"] == back["encoder_weights"] == 39
    from transformers import TFBertModel

    ours = TFBertModel.from_pretrained(hf)(input_ids=expected["input_ids"], attention_mask=expected["input_mask"],
                                           token_type_ids=expected["segment_ids"]).last_hidden_state.numpy()
    assert np.abs(ours[keep] - expected["sequence_output"][keep]).max() < 1e-5


def test_output_dir_never_destroys_inputs_or_foreign_files(tmp_path, flag_values, model_garden_copy):
    def run(output, *extra):
        return convert.run(flag_values(convert.define_flags, [f"--init_checkpoint={model_garden_copy}",
                                                              f"--output_dir={output}", *extra]))

    before = sorted(os.listdir(model_garden_copy))
    for output, relation in ((model_garden_copy, "is"), (os.path.join(model_garden_copy, "hf"), "is inside"),
                             (str(tmp_path), "contains")):
        with pytest.raises(UserError) as error:
            run(output)
        assert str(error.value) == (f"--output_dir {output} {relation} --init_checkpoint {model_garden_copy}: writing "
                                    "it would destroy the input; choose another --output_dir")
    assert sorted(os.listdir(model_garden_copy)) == before

    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"not a model")
    with pytest.raises(UserError) as error:
        run(str(foreign))
    assert str(error.value) == (f"--output_dir {foreign} is a non-empty directory bert_tf did not write (no "
                                "bert_tf.json): choose an empty or new --output_dir, or pass --overwrite_output_dir to "
                                "replace everything in it")
    assert os.listdir(foreign) == ["holiday.jpg"]
    # Our own earlier output is replaced without asking; a foreign one only when asked.
    ours = str(tmp_path / "converted")
    run(ours)
    run(ours)
    run(str(foreign), "--overwrite_output_dir")
    assert "holiday.jpg" not in os.listdir(foreign) and "tf_model.h5" in os.listdir(foreign)


def test_cased_vocab_sets_casing_and_refuses_a_contradiction(tmp_path, flag_values, model_garden_copy):
    vocab = os.path.join(model_garden_copy, "vocab.txt")
    words = open(vocab).read().split("\n")
    with open(vocab, "w") as f:  # capitalise half the word pieces: a cased vocab
        f.write("\n".join(w.capitalize() if w.startswith("word") and int(w[4:]) % 2 else w for w in words))
    from bert_tf import tokenization

    assert tokenization.vocab_casing(vocab) == (True, 47, 95)
    result = convert.run(flag_values(convert.define_flags, [f"--init_checkpoint={model_garden_copy}",
                                                            f"--output_dir={tmp_path / 'out'}"]))
    assert result["do_lower_case"] is False
    assert json.load(open(tmp_path / "out" / "tokenizer_config.json"))["do_lower_case"] is False
    with pytest.raises(UserError) as error:
        convert.run(flag_values(convert.define_flags, [f"--init_checkpoint={model_garden_copy}",
                                                       f"--output_dir={tmp_path / 'again'}", "--do_lower_case"]))
    assert str(error.value) == (f"--do_lower_case=True contradicts the model: vocab {vocab} is cased (47 of 95 word "
                                "pieces have capitals): leave --do_lower_case out (or pass --do_lower_case=False)")
    assert not (tmp_path / "again").exists()
