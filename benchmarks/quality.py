"""Quality at an equal budget: the plain Keras recipe vs bert_tf, then one difference at a time (issue 19).

Classification (data/sentiment), regression (data/regression) and POS tagging (data/pos), every
cell from the same pretrained weights (all-MiniLM-L6-v2) at the same max_seq_length, batch size,
peak learning rate and epochs:

* ``plain``: ``TFBertForSequenceClassification`` / ``TFBertForTokenClassification`` with their own
  losses, every example padded to max_seq_length, Adam at a constant rate, Keras ``fit``, no
  clipping, no weight decay;
* ``bert_tf``: ``run_classifier`` / ``run_tagger`` at their default settings (``--recipe=fast``);
* ``bert_recipe``: the same jobs with ``--recipe=bert`` (google-research/bert's schedule, weight
  decay and clipping), then with ONE of its choices switched to the plain recipe's (``CELLS``), and
  all of them at once (``all_plain``).

Both recipes initialise the head alike (truncated normal, stddev initializer_range) and drop out
its input at hidden_dropout_prob, so neither has a cell. Differences left without a switch: Adam's
epsilon (1e-6 here, Keras' 1e-7) and tagging's loss average (per sentence, then over the batch;
the plain recipe averages over all labelled words of the batch).

Every cell runs once per seed (the seed sets head initialisation, dropout and data order); the
table gives the test metric's mean and standard deviation, its difference to ``plain`` and to
``bert_recipe``, the wall time of a run (process work from reading data to test metrics) and the share
of this machine's float32 matmul peak the training reached (benchmarks.flops).
``--quick`` runs the same code on a tiny randomly initialised encoder, a few dozen examples and
one seed: a smoke test, not a measurement.
"""
import os
import shutil
import sys
import tempfile
import time

from absl import flags as absl_flags

from bert_tf import config as config_lib
from bert_tf import fileio
from bert_tf.data.classification import read_examples
from bert_tf.data.tagging import read_conll
from bert_tf.errors import UserError
from bert_tf.modeling.tasks import BertTaskModel
from benchmarks import REPO, flops
from benchmarks.data_head import first_examples
from benchmarks.finetune import minilm_encoder, save_hf_with_minilm_vocab
from benchmarks.quality_recipes import CELLS, PLAIN, TASKS, run_bert_tf, run_plain, wordpiece_lengths
from benchmarks.quality_table import format_table, plot, summarise


# Every cell of the full ablation (docs/finetuning_results.md) on all three tasks took about two
# hours on 2 cores; these answer the question in about one.
DEFAULT_CELLS = [PLAIN, "bert_tf", "fast_head_lr_1", "fast_no_buckets", "bert_recipe", "constant_rate"]


def define_flags(fv):
    f = absl_flags
    f.DEFINE_list("tasks", list(TASKS), f"Task families, of {', '.join(TASKS)}.", flag_values=fv)
    f.DEFINE_list("cells", DEFAULT_CELLS, f"Cells to run: {PLAIN} (the Keras recipe) and bert_tf variants, of "
                  f"{', '.join(CELLS)}. The default set (the defaults, the paper recipe, and the two choices the full "
                  "ablation found to matter) takes about an hour on 2 idle cores; every cell about 9 minutes.",
                  flag_values=fv)
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
    for kind, given, known in (("task", flags.tasks, TASKS), ("cell", flags.cells, [PLAIN, *CELLS])):
        unknown = [g for g in given if g not in known]
        if unknown:
            raise UserError(f"unknown {kind} {unknown[0]!r}: choose from {', '.join(known)}")
    if not settings["seeds"]:
        raise UserError("--seeds is empty: give at least one seed")
    if "fast_pack_sequences" in flags.cells and "tagging" in flags.tasks:
        raise UserError("--cells=fast_pack_sequences packs sentence-level examples (run_classifier): "
                        "add --tasks=classification,regression")


def task_examples(task, path):
    """(texts or word lists, labels as strings) of a task file."""
    if TASKS[task]["job"] == "tagger":
        sentences = read_conll(path)
        return [s.words for s in sentences], [s.tags for s in sentences]
    examples, _ = read_examples(path)
    return [e.text for e in examples], [e.label for e in examples]


def _init_dir(flags, work):
    """An encoder-only Hugging Face directory both recipes start from (vocab beside it): all-MiniLM-L6-v2,
    or under --quick the tiny preset randomly initialised (seed 0) with all-MiniLM-L6-v2's vocabulary."""
    import tf_keras

    path = os.path.join(work, "init")
    tf_keras.utils.set_random_seed(0)
    if flags.quick:
        encoder = BertTaskModel(config_lib.load_bert_config("tiny")).build_with_dummies()
    else:
        encoder = minilm_encoder()
    save_hf_with_minilm_vocab(encoder, path)
    return path, encoder.config


def _prepare(task, settings, work):
    """(files, examples, training lengths, head kind, number of labels) of one task's data."""
    files = {}
    for split, count in (("train", settings["max_train_examples"]), ("test", settings["max_test_examples"])):
        source = os.path.join(REPO, TASKS[task][split])
        target = os.path.join(work, f"{task}-{split}{os.path.splitext(source)[1]}")
        files[split] = first_examples(source, count, target)
    train_texts, train_labels = task_examples(task, files["train"])
    test_texts, test_labels = task_examples(task, files["test"])
    tagging = TASKS[task]["job"] == "tagger"
    label_list = sorted({t for tags in train_labels for t in tags} if tagging else set(train_labels))
    data = (train_texts, train_labels, test_texts, test_labels, label_list)
    lengths = wordpiece_lengths(task, train_texts, settings["max_seq_length"])
    return (files, data, lengths, "tagging" if tagging else "classification",
            1 if task == "regression" else len(label_list))


def run(flags):
    import tf_keras

    settings = _settings(flags)
    _check(flags, settings)
    fileio.ensure_dir(flags.output_dir)
    work = tempfile.mkdtemp(prefix="bench_quality_")
    try:
        peak = flops.matmul_peak("float32", size=512 if flags.quick else 2048)
        print(f"float32 matmul peak: {peak / 1e9:.1f} GFLOP/s, cpus {os.cpu_count()}", flush=True)
        init_dir, config = _init_dir(flags, work)
        prepared = {task: _prepare(task, settings, work) for task in flags.tasks}
        runs = []
        # Cell by cell across the tasks: the first cells (the plain recipe, the defaults) cover every
        # task early, so an interrupted run still compares them everywhere.
        for cell in flags.cells:
            for task in flags.tasks:
                files, data, lengths, head, num_labels = prepared[task]
                for seed in settings["seeds"]:
                    started = time.perf_counter()
                    if cell == PLAIN:
                        metric, train_seconds = run_plain(task, seed, settings, data, init_dir)
                        bounds = None
                    else:
                        metric, train_seconds, bounds = run_bert_tf(task, cell, seed, settings, files, init_dir, work)
                    wall = time.perf_counter() - started
                    # 81 models built in one process: drop each one's graph state before the next.
                    tf_keras.backend.clear_session()
                    # A packed example costs its own length; otherwise the bound of its bucket.
                    packed = "--pack_sequences" in CELLS.get(cell, [])
                    bounds = bounds or [settings["max_seq_length"]]
                    padded = lengths if packed else flops.padded_lengths(lengths, bounds)
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
    plot(table, os.path.join(flags.output_dir, "quality.png"))
    print(f"reproduce: {command}".rstrip())
    return report
