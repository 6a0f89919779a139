"""``--format=tflite``: the model on token ids as a TensorFlow Lite flatbuffer, tokenizer outside.

TFLite's builtin kernels have no string or WordPiece ops (TF Text's ops would need the Flex
delegate, which mobile runtimes rarely ship), so the .tflite file takes ``input_ids``,
``attention_mask`` and ``token_type_ids`` (int32 [batch, length], any length up to the positions
the model has) and the caller tokenizes: ``vocab.txt`` and the lower-casing setting travel next to
it, and ``bert_tf.Predictor.from_dir`` on the directory runs the host WordPiece (the one training
used) before the interpreter. Only builtin ops are allowed in the conversion, so any TFLite
runtime runs the file.

Directory written (export_dir/<version>/, atomically): ``model.tflite``, ``vocab.txt``,
``bert_tf_export.json`` (task, labels, inputs, max_seq_length, do_lower_case, weights).
Outputs by task: classification ``logits`` and ``probabilities`` [B, C]; regression ``score`` [B].

``--quantize=dynamic``: dynamic-range quantization, weights stored as int8 (about a quarter of the
size), activations quantized on the fly inside the matrix products.
"""
import os

import tensorflow as tf

from bert_tf import fileio, run_metadata
from bert_tf.errors import UserError
from bert_tf.export import exporter
from bert_tf.modeling import lora
from bert_tf.modeling.checkpoints import model_dir_of

MODEL_FILE = "model.tflite"
META_FILE = "bert_tf_export.json"
TASKS = ("classification", "regression")
QUANTIZE = ("none", "dynamic")
IDS_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _ids_function(model, task):
    """A concrete function from ids to the task's numeric outputs (no strings: TFLite has no such kernels)."""
    specs = [tf.TensorSpec([None, None], tf.int32, name=name) for name in IDS_INPUTS]

    @tf.function(input_signature=specs)
    def serve_ids(input_ids, attention_mask, token_type_ids):
        outputs = model({"input_ids": input_ids, "attention_mask": attention_mask,
                         "token_type_ids": token_type_ids}, training=False)
        if task == "regression":
            return {"score": outputs["score"]}
        return {"logits": outputs["logits"], "probabilities": outputs["probabilities"]}

    return serve_ids.get_concrete_function()


def convert(model, task, quantize="none"):
    """The .tflite bytes of ``model`` (builtin ops only)."""
    function = _ids_function(model, task)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    try:
        return converter.convert()
    except Exception as error:  # the converter raises ConverterError and plain exceptions alike
        raise UserError(f"TFLite conversion failed ({str(error).strip().splitlines()[-1][:200]}): "
                        "export a SavedModel instead (--format=saved_model)") from None


def export_tflite(model_dir, export_dir, version=None, max_seq_length=None, quantize="none"):
    """Writes export_dir/<version>/{model.tflite, vocab.txt, bert_tf_export.json}; returns the directory."""
    if quantize not in QUANTIZE:
        raise UserError(f"--quantize={quantize} is not one of {', '.join(QUANTIZE)} for --format=tflite")
    target = exporter.version_target(export_dir, version)
    model, meta = exporter.load_for_export(model_dir, max_seq_length)
    if meta["task"] not in TASKS:
        raise UserError(f"{model_dir} holds a {meta['task']} model; --format=tflite covers "
                        f"{', '.join(TASKS)}: export it with --format=saved_model")
    lora.merge_lora(model)  # a live LoRA model converts as plain dense kernels (no-op otherwise)
    flatbuffer = convert(model, meta["task"], quantize)
    # model.tflite last: readers (is_tflite_dir, the Predictor) look for it, so on object stores
    # the directory counts only once complete.
    with fileio.atomic_path(target, marker=MODEL_FILE) as temp:
        fileio.ensure_dir(temp)
        with tf.io.gfile.GFile(os.path.join(temp, MODEL_FILE), "wb") as f:
            f.write(flatbuffer)
        tf.io.gfile.copy(meta["vocab_file"], os.path.join(temp, "vocab.txt"))
        fileio.write_json(os.path.join(temp, META_FILE), {
            "format": "tflite", "task": meta["task"], "labels": meta.get("labels"),
            "text_pair": bool(meta.get("text_pair", False)), "inputs": list(IDS_INPUTS),
            "max_seq_length": meta["max_seq_length"], "do_lower_case": meta["do_lower_case"],
            "weights": "int8 (dynamic range)" if quantize == "dynamic" else "float32"})
        run_metadata.copy_into_export(model_dir_of(model_dir), temp, run_metadata.FILENAME)
    return target


def is_tflite_dir(path):
    return tf.io.gfile.exists(os.path.join(path, MODEL_FILE))


class Interpreter:
    """A .tflite file under the TFLite interpreter, called with numpy ids of any batch and length."""

    def __init__(self, path, num_threads=None):
        import warnings

        with tf.io.gfile.GFile(path, "rb") as f:  # model_content: gs:// paths work too
            content = f.read()
        self.size_bytes = len(content)
        with warnings.catch_warnings():
            # TF 2.21 still ships tf.lite.Interpreter; its notice about the LiteRT package is not ours to act on.
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
            self._interpreter = tf.lite.Interpreter(model_content=content, num_threads=num_threads)
        self._runner = self._interpreter.get_signature_runner()

    def __call__(self, input_ids, attention_mask, token_type_ids):
        return self._runner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
