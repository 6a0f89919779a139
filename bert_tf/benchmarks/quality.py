"""Quality at an equal budget: the plain Keras recipe vs bert_tf, then one difference at a time (issue 19).

Classification (data/sentiment), regression (data/regression) and POS tagging (data/pos), every
cell from the same pretrained weights (all-MiniLM-L6-v2) at the same max_seq_length, batch size,
peak learning rate and epochs:

* ``plain``: ``TFBertForSequenceClassification`` / ``TFBertForTokenClassification`` with their own
  losses, every example padded to max_seq_length, Adam at a constant rate, Keras ``fit``, no
  clipping, no weight decay;
* ``bert_tf``: ``run_classifier`` / ``run_tagger`` at their default settings;
* then ``bert_tf`` with ONE of its choices switched to the plain recipe's (``CELLS``), and all of them
  at once (``all_plain``).

Both recipes initialise the head alike (truncated normal, stddev initializer_range) and drop out
its input at hidden_dropout_prob, so neither has a cell. Differences left without a switch: Adam's
epsilon (1e-6 here, Keras' 1e-7) and tagging's loss average (per sentence, then over the batch;
the plain recipe averages over all labelled words of the batch).

Every cell runs once per seed (the seed sets head initialisation, dropout and data order); the
table gives the test metric's mean and standard deviation, its difference to ``plain`` and to
``bert_tf``, the wall time of a run (process work from reading data to test metrics) and the share
of this machine's float32 matmul peak the training reached (bert_tf.benchmarks.flops).
``--quick`` runs the same code on a tiny randomly initialised encoder, a few dozen examples and
one seed: a smoke test, not a measurement.
"""
import os
import shutil
import sys
import tempfile
import time

import numpy as np
from absl import flags as absl_flags

from bert_tf import fileio
from bert_tf.benchmarks import flops
from bert_tf.benchmarks.finetune import REPO, _minilm

# Task -> the job, its data (under the repository), the test metric and the job's own extra flags.
TASKS = {
    "classification": {"job": "classifier", "train": "data/sentiment/train.tsv", "test": "data/sentiment/test.tsv",
                       "metric": "accuracy", "flags": []},
    "regression": {"job": "classifier", "train": "data/regression/train.tsv", "test": "data/regression/test.tsv",
                   "metric": "pearson", "flags": ["--task_type=regression"]},
    "tagging": {"job": "tagger", "train": "data/pos/train.conll", "test": "data/pos/test.conll",
                "metric": "token_accuracy", "flags": []},
}
# bert_tf cells: the flags that switch one of its choices to the plain recipe's.
SWITCHES = {
    "constant_rate": ["--lr_schedule=constant"],  # the 10% warmup kept, no decay after it
    "no_warmup": ["--warmup_proportion=0"],  # linear decay kept, from the peak at step 0
    "no_clipping": ["--clip_norm=0"],
    "no_weight_decay": ["--weight_decay=0"],
    "no_buckets": ["--length_buckets="],  # every example padded to max_seq_length: batches mix lengths
}
CELLS = {"bert_tf": [], **SWITCHES, "all_plain": [f for switch in SWITCHES.values() for f in switch]}
PLAIN = "plain"


def define_flags(fv):
    f = absl_flags
    f.DEFINE_list("tasks", list(TASKS), f"Task families, of {', '.join(TASKS)}.", flag_values=fv)
    f.DEFINE_list("cells", [PLAIN, *CELLS], f"Cells to run: {PLAIN} (the Keras recipe) and bert_tf variants, of "
                  f"{', '.join(CELLS)}.", flag_values=fv)
    f.DEFINE_list("seeds", ["1", "2", "3"], "Seeds; every cell runs once per seed.", flag_values=fv)
    f.DEFINE_integer("max_train_examples", 2000, "Training examples per task (the first of each training file).",
                     flag_values=fv)
    f.DEFINE_integer("max_test_examples", 1000, "Test examples (sentences for tagging) per task.", flag_values=fv)
    f.DEFINE_integer("max_seq_length", 64, "Sequence length for everyone (bert_tf's largest bucket).",
                     flag_values=fv)
    f.DEFINE_integer("train_batch_size", 32, "Batch size for everyone.", flag_values=fv)
    f.DEFINE_float("learning_rate", 5e-5, "Peak learning rate for everyone (the plain recipe's constant rate).",
                   flag_values=fv)
    f.DEFINE_integer("num_train_epochs", 1, "Epochs for everyone.", flag_values=fv)
    f.DEFINE_bool("quick", False, "Smoke test: a tiny randomly initialised encoder (the tiny preset with "
                  "all-MiniLM-L6-v2's vocabulary), 48 training and 24 test examples, the first seed, length 32.",
                  flag_values=fv)
    f.DEFINE_string("output_dir", os.path.join(REPO, "benchmark_output", "quality"),
                    "Where results.json and quality.png go.", flag_values=fv)


# ---- settings and data --------------------------------------------------------------------------

def _settings(flags):
    settings = {name: getattr(flags, name) for name in ("max_train_examples", "max_test_examples", "max_seq_length",
                                                         "train_batch_size", "learning_rate", "num_train_epochs")}
    settings["seeds"] = [int(s) for s in flags.seeds]
    if flags.quick:
        settings.update(max_train_examples=48, max_test_examples=24, max_seq_length=32, train_batch_size=16,
                        seeds=settings["seeds"][:1])
    return settings


def _check(flags, settings):
    from bert_tf.errors import UserError

    for kind, given, known in (("task", flags.tasks, TASKS), ("cell", flags.cells, [PLAIN, *CELLS])):
        unknown = [g for g in given if g not in known]
        if unknown:
            raise UserError(f"unknown {kind} {unknown[0]!r}: choose from {', '.join(known)}")
    if not settings["seeds"]:
        raise UserError("--seeds is empty: give at least one seed")


def _first_sentences(path, count, target):
    """The first ``count`` sentences of a CoNLL file (or rows of a TSV, header kept) written to ``target``."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith(".conll"):
        kept = "\n\n".join(text.strip("\n").split("\n\n")[:count]) + "\n"
    else:
        lines = text.splitlines(keepends=True)
        kept = "".join(lines[:count + 1])
    fileio.write_text(target, kept)
    return target


def _examples(task, path):
    """(texts or word lists, labels as strings) of a task file."""
    if TASKS[task]["job"] == "tagger":
        from bert_tf.data.tagging import read_conll

        sentences = read_conll(path)
        return [s.words for s in sentences], [s.tags for s in sentences]
    from bert_tf.data.classification import read_examples

    examples, _ = read_examples(path)
    return [e.text for e in examples], [e.label for e in examples]


def _init_dir(flags, work):
    """An encoder-only Hugging Face directory both recipes start from (vocab beside it): all-MiniLM-L6-v2,
    or under --quick the tiny preset randomly initialised (seed 0) with all-MiniLM-L6-v2's vocabulary."""
    from bert_tf import config as config_lib
    from bert_tf.modeling import checkpoints
    from bert_tf.modeling.tasks import BertTaskModel

    import tf_keras

    path = os.path.join(work, "init")
    tf_keras.utils.set_random_seed(0)
    if flags.quick:
        encoder = BertTaskModel(config_lib.load_bert_config("tiny")).build_with_dummies()
    else:
        encoder = BertTaskModel(checkpoints.load_checkpoint_config(_minilm())).build_with_dummies()
        checkpoints.load_weights(encoder, _minilm())
    checkpoints.save_hf(encoder, path, vocab_file=os.path.join(_minilm(), "vocab.txt"), do_lower_case=True)
    return path, encoder.config


# ---- the two recipes -------------------------------------------------------------------------------

def _tokenizer():
    from transformers import BertTokenizerFast

    return BertTokenizerFast(os.path.join(_minilm(), "vocab.txt"), do_lower_case=True)


def _lengths(task, texts, max_seq_length):
    """Unpadded wordpiece lengths ([CLS] and [SEP] included, cut at max_seq_length)."""
    split = TASKS[task]["job"] == "tagger"
    encoded = _tokenizer()(texts, is_split_into_words=split, truncation=True, max_length=max_seq_length)
    return [len(ids) for ids in encoded["input_ids"]]


def _plain_inputs(task, texts, labels, label_list, max_seq_length):
    """Padded ids and the labels the Hugging Face model's own loss reads (tags on each word's first piece)."""
    from bert_tf.modeling.tasks import IGNORE_LABEL

    tagging = TASKS[task]["job"] == "tagger"
    encoded = _tokenizer()(texts, is_split_into_words=tagging, truncation=True, padding="max_length",
                           max_length=max_seq_length, return_tensors="np")
    inputs = {k: encoded[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    if task == "regression":
        return inputs, np.array([float(v) for v in labels], np.float32), None
    if not tagging:
        index = {label: i for i, label in enumerate(label_list)}
        return inputs, np.array([index[v] for v in labels], np.int32), None
    index = {tag: i for i, tag in enumerate(label_list)}
    label_ids = np.full(inputs["input_ids"].shape, IGNORE_LABEL, np.int32)
    first_pieces = []
    for row, tags in enumerate(labels):
        firsts, previous = {}, None
        for position, word in enumerate(encoded.word_ids(row)):
            if word is not None and word != previous:
                firsts[word] = position
                label_ids[row, position] = index.get(tags[word], IGNORE_LABEL)
            previous = word
        first_pieces.append(firsts)
    return inputs, label_ids, first_pieces


def _plain_metric(task, logits, labels, label_list, first_pieces):
    from bert_tf.training import metrics

    if task == "regression":
        return metrics.regression_metrics([float(v) for v in labels], logits.reshape(-1))["pearson"]
    if first_pieces is None:
        return float(np.mean(np.array(label_list)[logits.argmax(-1)] == np.array(labels)))
    # Words cut off by truncation get the first tag, as run_tagger's fallback for a tag set without 'O'.
    predicted = [[label_list[logits[row, firsts[w]].argmax()] if w in firsts else label_list[0]
                  for w in range(len(tags))] for row, (tags, firsts) in enumerate(zip(labels, first_pieces))]
    return metrics.token_accuracy(labels, predicted)


def run_plain(task, seed, settings, data, init_dir):
    """The Keras recipe on one task and seed -> (test metric, training seconds)."""
    import tensorflow as tf
    import tf_keras
    import transformers

    train_texts, train_labels, test_texts, test_labels, label_list = data
    inputs, labels, _ = _plain_inputs(task, train_texts, train_labels, label_list, settings["max_seq_length"])
    test_inputs, _, first_pieces = _plain_inputs(task, test_texts, test_labels, label_list,
                                                 settings["max_seq_length"])
    tf_keras.utils.set_random_seed(seed)
    tagging = TASKS[task]["job"] == "tagger"
    model_class = transformers.TFBertForTokenClassification if tagging else \
        transformers.TFBertForSequenceClassification
    model = model_class.from_pretrained(init_dir, num_labels=1 if task == "regression" else len(label_list))
    # No loss given: the model's own loss (cross-entropy skipping -100, or MSE for one output), as the recipe has it.
    model.compile(optimizer=tf_keras.optimizers.Adam(settings["learning_rate"]))
    train = tf.data.Dataset.from_tensor_slices(dict(inputs, labels=labels)).shuffle(
        len(labels), seed=seed).batch(settings["train_batch_size"])
    started = time.perf_counter()
    model.fit(train, epochs=settings["num_train_epochs"], verbose=0)
    train_seconds = time.perf_counter() - started
    logits = model.predict(test_inputs, batch_size=64, verbose=0).logits
    return _plain_metric(task, logits, test_labels, label_list, first_pieces), train_seconds


def run_bert_tf(task, cell, seed, settings, files, init_dir, work):
    """run_classifier / run_tagger in this process with the cell's flags -> (test metric, training
    seconds, padded length bounds or None)."""
    from bert_tf.jobs import classifier, finetune, tagger

    job = {"classifier": classifier, "tagger": tagger}[TASKS[task]["job"]]
    fv = absl_flags.FlagValues()
    job.define_flags(fv)
    output_dir = os.path.join(work, f"{task}-{cell}-{seed}")
    fv(["quality", f"--init_checkpoint={init_dir}", f"--train_file={files['train']}",
        f"--test_file={files['test']}", "--do_train", "--do_predict",
        f"--max_train_examples={settings['max_train_examples']}", f"--max_seq_length={settings['max_seq_length']}",
        f"--train_batch_size={settings['train_batch_size']}", f"--learning_rate={settings['learning_rate']}",
        f"--num_train_epochs={settings['num_train_epochs']}", f"--seed={seed}", f"--output_dir={output_dir}",
        f"--cache_dir={os.path.join(work, 'cache-' + task)}", "--log_steps=1000000",
        "--save_checkpoints_steps=1000000", *TASKS[task]["flags"], *CELLS[cell]])
    results = job.run(fv)
    bounds = finetune.length_buckets(fv)
    shutil.rmtree(output_dir, ignore_errors=True)  # each run saves a whole model: keep the disk free
    return results["test"][TASKS[task]["metric"]], results["train"]["train_seconds"], bounds


# ---- the table -----------------------------------------------------------------------------------

def summarise(runs, cells):
    """Per task and cell: mean, standard deviation (ddof 0 over seeds), deltas to plain and bert_tf,
    mean wall seconds and FLOP share, from runs = [{task, cell, seed, metric, wall_seconds, flop_share}]."""
    table = {}
    for task in dict.fromkeys(r["task"] for r in runs):
        rows = {}
        for cell in cells:
            mine = [r for r in runs if r["task"] == task and r["cell"] == cell]
            if not mine:
                continue
            values = np.array([r["metric"] for r in mine])
            rows[cell] = {"mean": float(values.mean()), "std": float(values.std()),
                          "seeds": [r["seed"] for r in mine], "values": values.tolist(),
                          "wall_seconds": float(np.mean([r["wall_seconds"] for r in mine])),
                          "flop_share": float(np.mean([r["flop_share"] for r in mine]))}
        for row in rows.values():
            for base in (PLAIN, "bert_tf"):
                row[f"vs_{base}"] = row["mean"] - rows[base]["mean"] if base in rows else None
        table[task] = rows
    return table


def format_table(table):
    lines = []
    for task, rows in table.items():
        lines.append(f"{task} ({TASKS[task]['metric']}):")
        lines.append(f"  {'cell':<16}{'mean':>8}{'std':>8}{'vs plain':>10}{'vs bert_tf':>12}{'wall s':>8}"
                     f"{'FLOP %':>8}  seeds")
        for cell, row in rows.items():
            deltas = "".join(f"{row[key]:>+{width}.4f}" if row[key] is not None else f"{'-':>{width}}"
                             for key, width in (("vs_plain", 10), ("vs_bert_tf", 12)))
            lines.append(f"  {cell:<16}{row['mean']:>8.4f}{row['std']:>8.4f}{deltas}{row['wall_seconds']:>8.1f}"
                         f"{100 * row['flop_share']:>8.1f}  {','.join(str(s) for s in row['seeds'])}")
    return "\n".join(lines)


def _plot(table, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(table), figsize=(4.5 * len(table), 4), squeeze=False)
    for axis, (task, rows) in zip(axes[0], table.items()):
        names = list(rows)
        base = rows[PLAIN]["mean"] if PLAIN in rows else 0.0
        axis.barh(names, [rows[n]["mean"] - base for n in names], xerr=[rows[n]["std"] for n in names],
                  color=["tab:gray" if n == PLAIN else "tab:blue" for n in names])
        axis.axvline(0, color="black", linewidth=0.8)
        axis.invert_yaxis()
        axis.set_title(f"{task}: {TASKS[task]['metric']}")
        axis.set_xlabel("difference to plain (mean, bar = std over seeds)" if PLAIN in rows else "mean")
    figure.tight_layout()
    fileio.write_png(path, figure)
    plt.close(figure)


def run(flags):
    import bert_tf  # noqa: F401

    import tf_keras

    settings = _settings(flags)
    _check(flags, settings)
    fileio.ensure_dir(flags.output_dir)
    work = tempfile.mkdtemp(prefix="bench_quality_")
    try:
        peak = flops.matmul_peak("float32", size=512 if flags.quick else 2048)
        print(f"float32 matmul peak: {peak / 1e9:.1f} GFLOP/s, cpus {os.cpu_count()}", flush=True)
        init_dir, config = _init_dir(flags, work)
        runs = []
        for task in flags.tasks:
            files = {}
            for split, count in (("train", settings["max_train_examples"]), ("test", settings["max_test_examples"])):
                source = os.path.join(REPO, TASKS[task][split])
                files[split] = _first_sentences(source, count, os.path.join(
                    work, f"{task}-{split}{os.path.splitext(source)[1]}"))
            train_texts, train_labels = _examples(task, files["train"])
            test_texts, test_labels = _examples(task, files["test"])
            tagging = TASKS[task]["job"] == "tagger"
            label_list = sorted({t for tags in train_labels for t in tags} if tagging else set(train_labels))
            data = (train_texts, train_labels, test_texts, test_labels, label_list)
            lengths = _lengths(task, train_texts, settings["max_seq_length"])
            head = "tagging" if tagging else "classification"
            num_labels = 1 if task == "regression" else len(label_list)
            for cell in flags.cells:
                for seed in settings["seeds"]:
                    started = time.perf_counter()
                    if cell == PLAIN:
                        metric, train_seconds = run_plain(task, seed, settings, data, init_dir)
                        bounds = None
                    else:
                        metric, train_seconds, bounds = run_bert_tf(task, cell, seed, settings, files, init_dir, work)
                    wall = time.perf_counter() - started
                    # 72 models built in one process: drop each one's graph state before the next.
                    tf_keras.backend.clear_session()
                    padded = flops.padded_lengths(lengths, bounds or [settings["max_seq_length"]])
                    work_flops = settings["num_train_epochs"] * flops.training_flops(config, padded, head, num_labels)
                    _, share = flops.utilisation(work_flops, train_seconds, peak)
                    runs.append({"task": task, "cell": cell, "seed": seed, "metric": float(metric),
                                 "wall_seconds": wall, "train_seconds": train_seconds, "flop_share": share})
                    print(f"{task} {cell} seed {seed}: {TASKS[task]['metric']} {metric:.4f}, {wall:.1f} s, "
                          f"{flops.describe(work_flops, train_seconds, peak)}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = summarise(runs, [PLAIN, *CELLS])
    print(format_table(table))
    command = "python tools/benchmark.py quality " + " ".join(a for a in sys.argv[1:] if a.startswith("--"))
    report = {"settings": settings, "quick": flags.quick, "matmul_peak_flops": peak, "table": table, "runs": runs,
              "command": command.rstrip()}
    fileio.write_json(os.path.join(flags.output_dir, "results.json"), report)
    _plot(table, os.path.join(flags.output_dir, "quality.png"))
    print(f"reproduce: {command}".rstrip())
    return report
