"""Fine-tuned-looking model directories (random tiny weights, real layout) and their exports."""
import json
import os
import subprocess
import sys

import pytest

MAX_SEQ_LENGTH = 32
LABELS = ["negative", "positive", "neutral"]
TAGS = ["O", "B-PER", "I-PER", "B-LOC"]

# Runs in a fresh interpreter: only tensorflow and tensorflow_text may be importable, so a
# finder refuses the packages an export must not need at load time.
LOADER = r'''
import json, sys
BLOCKED = ("bert_tf", "transformers", "tf_keras", "keras_nlp", "keras_hub")
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"export needs {name}")
sys.meta_path.insert(0, Block())
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401
request = json.load(sys.stdin)
loaded = tf.saved_model.load(request["path"])
result = {}
for call in request["calls"]:
    fn = loaded.signatures[call["signature"]]
    inputs = {k: tf.constant(v, dtype=tf.string if call["signature"] == "serving_default" else tf.int32)
              for k, v in call["inputs"].items()}
    try:
        out = fn(**inputs)
        result[call["name"]] = {k: (v.numpy().astype(str) if v.dtype == tf.string else v.numpy()).tolist()
                                for k, v in out.items()}
    except Exception as error:  # reported, not raised: callers assert on it
        result[call["name"]] = {"error": f"{type(error).__name__}: {str(error).strip().splitlines()[-1][:300]}"}
result["imported"] = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print("RESULT" + json.dumps(result))
'''


def run_fresh(path, calls, timeout=240):
    """Loads the SavedModel at ``path`` in a fresh process and runs ``calls``
    ([{'name', 'signature', 'inputs'}]); returns {name: outputs or {'error'}}."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_USE_LEGACY")}
    env["PYTHONPATH"] = ""
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    proc = subprocess.run([sys.executable, "-c", LOADER], input=json.dumps({"path": path, "calls": calls}),
                          capture_output=True, text=True, timeout=timeout, env=env, cwd="/")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT"):])


def _save(model, path, vocab_file, meta):
    from bert_tf.modeling import checkpoints

    checkpoints.save_hf(model, path, vocab_file=vocab_file, do_lower_case=True, meta=meta)
    return path


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory, tiny_checkpoint, tiny_config):
    import tf_keras

    from bert_tf.modeling import checkpoints
    from bert_tf.modeling.tasks import SequenceClassifier

    tf_keras.utils.set_random_seed(1)
    model = SequenceClassifier(tiny_config, num_labels=len(LABELS)).build_with_dummies()
    checkpoints.load_weights(model, tiny_checkpoint)
    return _save(model, str(tmp_path_factory.mktemp("clf") / "model"), os.path.join(tiny_checkpoint, "vocab.txt"),
                 {"task": "classification", "labels": LABELS, "max_seq_length": MAX_SEQ_LENGTH})


@pytest.fixture(scope="session")
def classifier_export(tmp_path_factory, classifier_dir):
    from bert_tf.export import exporter

    return exporter.export_saved_model(classifier_dir, str(tmp_path_factory.mktemp("serving") / "clf"))


def model_outputs(model_dir, features):
    """The in-memory model's outputs for host-tokenized features (numpy)."""
    from bert_tf.export import exporter

    model, _, _ = exporter.load_task_model(model_dir)
    outputs = model({k: v for k, v in features.items()}, training=False)
    return {k: v.numpy() for k, v in outputs.items()}


def _task_dir(tmp_path_factory, tiny_checkpoint, tiny_config, model, meta, seed):
    import tf_keras

    from bert_tf.modeling import checkpoints

    tf_keras.utils.set_random_seed(seed)
    model.build_with_dummies()
    checkpoints.load_weights(model, tiny_checkpoint)
    # A random head gives near-uniform outputs; scale it so argmax/span decisions are clear-cut.
    for variable in model.trainable_weights:
        if not variable.name.split("/", 1)[-1].startswith("bert/"):
            variable.assign(variable * 30.0)
    path = str(tmp_path_factory.mktemp(meta["task"]) / "model")
    return _save(model, path, os.path.join(tiny_checkpoint, "vocab.txt"), meta)


@pytest.fixture(scope="session")
def tagger_dir(tmp_path_factory, tiny_checkpoint, tiny_config):
    from bert_tf.modeling.tasks import TokenTagger

    return _task_dir(tmp_path_factory, tiny_checkpoint, tiny_config, TokenTagger(tiny_config, num_labels=len(TAGS)),
                     {"task": "tagging", "labels": TAGS, "max_seq_length": MAX_SEQ_LENGTH}, seed=2)


@pytest.fixture(scope="session")
def squad_dir(tmp_path_factory, tiny_checkpoint, tiny_config):
    from bert_tf.modeling.tasks import SpanQA

    return _task_dir(tmp_path_factory, tiny_checkpoint, tiny_config, SpanQA(tiny_config),
                     {"task": "squad", "max_seq_length": 48, "max_query_length": 8, "max_answer_length": 5},
                     seed=3)


@pytest.fixture(scope="session")
def pair_regression_dir(tmp_path_factory, tiny_checkpoint, tiny_config):
    from bert_tf.modeling.tasks import SequenceClassifier

    return _task_dir(tmp_path_factory, tiny_checkpoint, tiny_config,
                     SequenceClassifier(tiny_config, num_labels=1, regression=True),
                     {"task": "regression", "max_seq_length": MAX_SEQ_LENGTH, "text_pair": True}, seed=4)


class _Exports(dict):
    """{task: SavedModel version dir}, each exported on first use (exports take seconds each)."""

    def __init__(self, request, base):
        super().__init__()
        self._request, self._base = request, base

    def __missing__(self, task):
        from bert_tf.export import exporter

        fixture = {"classification": "classifier_export", "tagging": "tagger_dir", "squad": "squad_dir",
                   "regression": "pair_regression_dir"}[task]
        value = self._request.getfixturevalue(fixture)
        self[task] = value if task == "classification" else \
            exporter.export_saved_model(value, os.path.join(self._base, task))
        return self[task]


@pytest.fixture(scope="session")
def exports(request, tmp_path_factory):
    """Lazily built exports of every task family, shared by the session."""
    return _Exports(request, str(tmp_path_factory.mktemp("serving")))


def graph_ops(path):
    """Every op type in an export's graphs and functions."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    ops = set()
    for graph in saved.meta_graphs:
        ops.update(node.op for node in graph.graph_def.node)
        for function in graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops


def custom_ops(path):
    """Op types in an export's graph that core TensorFlow does not register (TF Text's)."""
    from tensorflow.python.framework import op_def_registry

    return {op for op in graph_ops(path) if op_def_registry.get(op) is None}


# TF Text ops present in TF Serving builds for years (no FastBertTokenizer, no RoundRobinTrim).
SERVING_SAFE_OPS = {"NormalizeUTF8", "RegexSplitWithOffsets", "WordpieceTokenizeWithOffsets"}
