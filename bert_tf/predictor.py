"""Predictions in a few lines from a fine-tuned model directory, a SavedModel export or a TFLite export.

    import bert_tf
    predictor = bert_tf.Predictor.from_dir("runs/sentiment")          # or runs/serving/sentiment/1
    predictor.predict(["a gripping film", "dull"])
    # [{'label': '1', 'score': 0.97, 'scores': {'0': 0.03, '1': 0.97}}, {'label': '0', ...}]

Every kind of directory runs the same serving code: a SavedModel export through its
``serving_default`` signature; a model directory (a fine-tuning --output_dir or its model/) through
the very ServingModule an export would save, built in memory (so both give the same results, to
float rounding); a TFLite export (``tools/export_savedmodel.py --format=tflite``) through the host
WordPiece and the TFLite interpreter. ``predict`` sorts the texts by length and runs them in
batches of similar length, then returns the results in the order given.

Results by task: classification ``{'label', 'score' (its probability), 'scores' {label:
probability}}``; regression ``{'score'}``; tagging ``{'words', 'tags', 'scores'}`` per
whitespace-separated word (``None`` for words past ``max_seq_length``); QA ``{'answer', 'score',
'no_answer_score', 'start_position', 'end_position'}`` (word-piece positions in the packed input).
Inputs: strings; ``(text, text_pair)`` tuples for pair models; ``(question, context)`` tuples or
``{'question', 'context'}`` dicts for QA.
"""
import os
import re

import numpy as np
import tensorflow as tf

from bert_tf import fileio
from bert_tf.errors import UserError
from bert_tf.export import exporter, tflite
from bert_tf.tasks import registry
from bert_tf.tokenization import HostTokenizer

EXPORT_META = os.path.join("assets.extra", "bert_tf_export.json")


def _latest_version(path):
    """An export base directory (TF Serving's layout) -> its highest numeric version; else ``path``."""
    if not tf.io.gfile.isdir(path):
        return path
    versions = [int(n.rstrip("/")) for n in tf.io.gfile.listdir(path) if re.fullmatch(r"\d+/?", n)]
    return os.path.join(path, str(max(versions))) if versions else path


def _numpy(outputs):
    return {name: value.numpy() if hasattr(value, "numpy") else np.asarray(value) for name, value in outputs.items()}


class Predictor:
    """Runs a fine-tuned model on raw text; see the module docstring. Build it with ``from_dir``."""

    def __init__(self, kind, meta, run_signature):
        self.kind = kind  # "model_dir", "saved_model" or "tflite"
        self.task = meta["task"]
        self.labels = list(meta.get("labels") or [])
        self.max_seq_length = meta.get("max_seq_length")
        # An export's metadata names its text inputs; model directories and TFLite exports say text_pair.
        text_pair = meta.get("text_pair", "text_pair" in (meta.get("inputs") or []))
        self._task = registry.task_of(dict(meta, text_pair=text_pair))
        self.inputs = tuple(self._task.text_inputs)
        self._run_signature = run_signature

    @classmethod
    def from_dir(cls, path, num_threads=None):
        """A fine-tuning --output_dir (or its model/), an export version directory (or the export base,
        whose latest version is taken), or a TFLite export directory. ``num_threads``: TFLite only."""
        if not path or not tf.io.gfile.isdir(path):
            raise UserError(f"{path} is not a directory: pass a fine-tuning --output_dir, an export version "
                            "directory such as export_dir/1, or a TFLite export directory")
        path = _latest_version(path)
        if tflite.is_tflite_dir(path):
            return cls._from_tflite(path, num_threads)
        if num_threads is not None:
            raise UserError(f"num_threads applies to TFLite exports, and {path} holds none: leave it out (TensorFlow "
                            "sets its own threads)")
        if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
            return cls._from_saved_model(path)
        if tf.io.gfile.exists(os.path.join(path, "model")) or tf.io.gfile.exists(os.path.join(path, "bert_tf.json")):
            return cls._from_model_dir(path)
        raise UserError(f"{path} holds no saved_model.pb, {tflite.MODEL_FILE} or fine-tuned model (bert_tf.json): "
                        "pass a fine-tuning --output_dir, an export version directory such as export_dir/1, or a "
                        "TFLite export directory")

    @classmethod
    def _from_saved_model(cls, path):
        import tensorflow_text  # noqa: F401  (registers the tokenizer ops the graph uses)

        meta_path = os.path.join(path, EXPORT_META)
        if not tf.io.gfile.exists(meta_path):
            raise UserError(f"{path} has no {EXPORT_META}: it was not exported by tools/export_savedmodel.py; "
                            "re-export the model")
        loaded = tf.saved_model.load(path)

        def run_signature(inputs, signature="serving_default"):
            if signature not in loaded.signatures:
                raise UserError(f"{path} has no signature {signature!r} (it has {sorted(loaded.signatures)})")
            function = loaded.signatures[signature]
            expected = sorted(function.structured_input_signature[1])
            if sorted(inputs) != expected:
                raise UserError(f"the {signature} signature takes {expected}, not {sorted(inputs)}")
            return _numpy(function(**{name: tf.constant(values, tf.string) for name, values in inputs.items()}))

        predictor = cls("saved_model", fileio.read_json(meta_path), run_signature)
        predictor._loaded = loaded  # the signatures need the loaded object alive
        return predictor

    @classmethod
    def _from_model_dir(cls, path):
        model, meta = exporter.load_for_export(path)
        module = exporter.serving_module(model, meta)
        text_function = module.text_function()

        def run_signature(inputs, signature="serving_default"):
            if signature != "serving_default":
                raise UserError(f"a model directory runs the serving_default signature only, not {signature!r}: "
                                "export it to call other signatures")
            expected = sorted(module.text_inputs)
            if sorted(inputs) != expected:
                raise UserError(f"the {signature} signature takes {expected}, not {sorted(inputs)}")
            return _numpy(text_function(**{name: tf.constant(v, tf.string) for name, v in inputs.items()}))

        predictor = cls("model_dir", meta, run_signature)
        predictor._module = module
        return predictor

    @classmethod
    def _from_tflite(cls, path, num_threads=None):
        meta = fileio.read_json(os.path.join(path, tflite.META_FILE))
        interpreter = tflite.Interpreter(os.path.join(path, tflite.MODEL_FILE), num_threads=num_threads)
        tokenizer = HostTokenizer(os.path.join(path, "vocab.txt"), meta["do_lower_case"])
        labels = np.array(meta.get("labels") or [""], dtype=object)
        names = registry.task_of(meta).text_inputs

        def run_signature(inputs, signature="serving_default"):
            if signature != "serving_default":
                raise UserError(f"a TFLite export has only the serving_default computation, not {signature!r}")
            if sorted(inputs) != sorted(names):
                raise UserError(f"this TFLite model takes {sorted(names)}, not {sorted(inputs)}")
            features, _ = tokenizer.encode(inputs[names[0]], inputs.get("text_pair"), meta["max_seq_length"])
            # Pad to the longest row, as the SavedModel's text signature does.
            width = max(int(features["input_mask"].sum(axis=1).max()), 2)
            outputs = interpreter(features["input_ids"][:, :width], features["input_mask"][:, :width],
                                  features["segment_ids"][:, :width])
            outputs = {name: np.asarray(value) for name, value in outputs.items()}
            if "probabilities" in outputs:  # a classifier: label ids and names, as the SavedModel's signature
                outputs["label_id"] = outputs["probabilities"].argmax(axis=-1).astype(np.int32)
                outputs["label"] = labels[outputs["label_id"]].astype(bytes)
            return outputs

        predictor = cls("tflite", meta, run_signature)
        predictor.size_bytes = interpreter.size_bytes
        return predictor

    # -- calling ---------------------------------------------------------------------------------

    def run(self, inputs, signature="serving_default"):
        """The raw outputs ({name: numpy array}) for ``inputs`` ({input name: [strings]}), one call."""
        return self._run_signature({name: list(values) for name, values in inputs.items()}, signature)

    def _rows(self, texts):
        """Strings, tuples or dicts (or one of them alone) -> one tuple of strings per input, checked."""
        if isinstance(texts, (str, dict)) or (isinstance(texts, tuple) and len(self.inputs) > 1
                                              and all(isinstance(v, str) for v in texts)):
            texts = [texts]
        rows = []
        for index, item in enumerate(texts):
            if isinstance(item, dict):
                missing = [name for name in self.inputs if name not in item]
                if missing:
                    raise UserError(f"input {index} lacks {missing}: this {self.task} model takes {list(self.inputs)}")
                item = tuple(item[name] for name in self.inputs)
            elif isinstance(item, str):
                item = (item,)
            item = tuple(item)
            if len(item) != len(self.inputs) or not all(isinstance(v, str) for v in item):
                raise UserError(f"input {index} is {item!r}: this {self.task} model takes "
                                f"{' and '.join(self.inputs)} as strings"
                                + (" (give a tuple per input)" if len(self.inputs) > 1 else ""))
            rows.append(item)
        return rows

    def predict(self, texts, batch_size=32):
        """Results (see the module docstring) for each input, in order; runs batches of similar length."""
        if batch_size <= 0:
            raise UserError(f"batch_size={batch_size} must be positive")
        rows = self._rows(texts)
        order = sorted(range(len(rows)), key=lambda i: sum(len(v) for v in rows[i]))
        results = [None] * len(rows)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            outputs = self.run({name: [rows[i][k] for i in chunk] for k, name in enumerate(self.inputs)})
            for j, i in enumerate(chunk):
                results[i] = self._result(outputs, j, rows[i])
        return results

    def _result(self, outputs, j, row):
        return self._task.result(outputs, j, row)
