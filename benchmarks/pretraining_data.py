"""create_pretraining_data: instances/s of ours vs the reference, same corpus, vocab and flags.

The reference is ``official.nlp.data.create_pretraining_data`` (tf-models-official, the
maintained port of google-research/bert's script; ``pip install --no-deps
tf-models-official==2.20.0``). Each runs in its own fresh Python process, ours as users run it
(``tools/create_pretraining_data.py``); the figures are instances / seconds of the work itself
(after imports) and of the whole process, start to exit. The reference's records are counted
afterwards, outside its process. Both outputs are then read with our parser and their
statistics compared.
"""
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import flags as absl_flags

from bert_tf.errors import UserError
from benchmarks import REPO

DEFAULT_CORPUS = os.path.join(REPO, "..", "shared", "data", "corpus", "wiki.txt")

# Ours is the script itself, so its start-up and exit count as users see them.
_OURS_SCRIPT = os.path.join(REPO, "tools", "create_pretraining_data.py")

_REFERENCE = """
import json, sys, time
from absl import flags
from official.nlp.data import create_pretraining_data as reference
flags.FLAGS(sys.argv)
started = time.time()
reference.main(None)
print("BENCH " + json.dumps({"seconds": time.time() - started}))
"""


def define_corpus_flags(fv):
    """--corpus and --vocab, shared with the record_codec benchmark (see ``vocab_for``)."""
    absl_flags.DEFINE_string("corpus", DEFAULT_CORPUS, "Text corpus (one sentence per line, blank line between "
                             "documents).", flag_values=fv)
    absl_flags.DEFINE_string("vocab", None, "vocab.txt (default: an 8000-piece vocab learned from the corpus).",
                             flag_values=fv)


def vocab_for(flags, corpus, work_dir):
    """--vocab, or an 8000-piece vocab learned from ``corpus`` into ``work_dir``."""
    from bert_tf import tokenization

    if flags.vocab:
        return flags.vocab
    vocab = os.path.join(work_dir, "vocab.txt")
    tokenization.build_vocab([corpus], vocab, vocab_size=8000)
    return vocab


def define_flags(fv):
    f = absl_flags
    define_corpus_flags(fv)
    f.DEFINE_integer("max_lines", 0, "Use only the first N lines of --corpus (0: all).", flag_values=fv)
    f.DEFINE_integer("seq_length", 128, "--max_seq_length for both.", flag_values=fv)
    f.DEFINE_integer("predictions", 20, "--max_predictions_per_seq for both.", flag_values=fv)
    f.DEFINE_integer("dupe_factor", 10, "--dupe_factor for both.", flag_values=fv)
    f.DEFINE_integer("workers", 2, "Our --num_workers (the reference is single-process).", flag_values=fv)
    f.DEFINE_string("work_dir", None, "Where outputs go (default: a temporary directory).", flag_values=fv)


def _cpu_seconds_of_children():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(command, prefix=""):
    """Runs ``command``; its last stdout line starting with ``prefix`` is JSON figures, plus the wall time
    and the CPU time of the process and its workers (steadier than wall time on a shared machine)."""
    started, cpu = time.time(), _cpu_seconds_of_children()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.time() - started
    lines = [line for line in result.stdout.splitlines() if line.startswith(prefix) and line.strip()]
    if result.returncode or not lines:
        raise UserError(f"benchmark run failed ({' '.join(command[:3])}...): {result.stderr.strip()[-500:]}")
    figures = json.loads(lines[-1][len(prefix):])
    figures["wall_seconds"] = wall
    figures["cpu_seconds"] = _cpu_seconds_of_children() - cpu
    return figures


def record_statistics(path, seq_length, predictions):
    """Schema check and statistics of a pretraining record file, read with our parser."""
    import tensorflow as tf

    from bert_tf.data import pretraining_records, records

    pretraining_records.check_records(path, seq_length, predictions, dynamic_masking=False)
    spec = pretraining_records.feature_spec(seq_length, predictions)
    labels, lengths, counts, masked = [], [], [], []
    for batch in records.make_dataset(path, spec, 1024, is_training=False):
        labels.append(batch["next_sentence_labels"].numpy().ravel())
        lengths.append(batch["attention_mask"].numpy().sum(1))
        weights = batch["masked_lm_weights"].numpy()
        counts.append(weights.sum(1))
        shown = tf.gather(batch["input_ids"], batch["masked_lm_positions"], batch_dims=1).numpy()
        masked.append(shown[weights > 0])
    masked = np.concatenate(masked)
    return {"instances": int(sum(len(x) for x in labels)), "random_next": float(np.concatenate(labels).mean()),
            "mean_length": float(np.concatenate(lengths).mean()),
            "mean_predictions": float(np.concatenate(counts).mean()),
            "masked_token_share": masked}


def run(flags):
    import bert_tf  # noqa: F401

    from bert_tf import tokenization

    # Found, not imported: importing it here would define its flags in this process.
    if importlib.util.find_spec("official") is None:
        raise UserError("the reference is not installed: pip install --no-deps tf-models-official==2.20.0 "
                        "(--no-deps: its own pins would replace this TensorFlow)")
    if not os.path.exists(flags.corpus):
        raise UserError(f"--corpus {flags.corpus} does not exist: pass a text file")
    work_dir = flags.work_dir or tempfile.mkdtemp(prefix="bench_pretraining_data_")
    os.makedirs(work_dir, exist_ok=True)
    corpus = flags.corpus
    if flags.max_lines:
        corpus = os.path.join(work_dir, "corpus.txt")
        with open(flags.corpus, encoding="utf-8") as source, open(corpus, "w", encoding="utf-8") as target:
            for number, line in enumerate(source):
                if number >= flags.max_lines:
                    break
                target.write(line)
    vocab = vocab_for(flags, corpus, work_dir)
    vocab_id = tokenization.load_vocab(vocab)
    common = [f"--input_file={corpus}", f"--vocab_file={vocab}", "--do_lower_case=true",
              f"--max_seq_length={flags.seq_length}", f"--max_predictions_per_seq={flags.predictions}",
              f"--dupe_factor={flags.dupe_factor}", "--random_seed=12345", "--masked_lm_prob=0.15",
              "--short_seq_prob=0.1"]
    ours_path = os.path.join(work_dir, "ours.tfrecord")
    reference_path = os.path.join(work_dir, "reference.tfrecord")
    load = os.getloadavg()[0]
    ours = _run([sys.executable, _OURS_SCRIPT] + common + [f"--output_file={ours_path}",
                                                          f"--num_workers={flags.workers}"])
    reference = _run([sys.executable, "-c", _REFERENCE] + common + [f"--output_file={reference_path}"], "BENCH ")
    stats = {"ours": record_statistics(ours_path, flags.seq_length, flags.predictions),
             "reference": record_statistics(reference_path, flags.seq_length, flags.predictions)}
    reference["instances"] = stats["reference"]["instances"]
    ours_rate = ours["instances"] / ours["seconds"]
    reference_rate = reference["instances"] / reference["seconds"]
    for figures in stats.values():
        shown = figures.pop("masked_token_share")
        figures["mask_token_share"] = float(np.mean(shown == vocab_id["[MASK]"]))
    print(f"corpus: {corpus} ({flags.max_lines or 'all'} lines), vocab {len(vocab_id)} pieces, "
          f"seq {flags.seq_length}, predictions {flags.predictions}, dupe_factor {flags.dupe_factor}, "
          f"cpus {os.cpu_count()}, load average {load:.1f} before the runs, {os.getloadavg()[0]:.1f} after")
    for name, figures, rate in (("ours", ours, ours_rate), ("reference", reference, reference_rate)):
        print(f"{name:>9}: {figures['instances']} instances in {figures['seconds']:.2f} s = {rate:,.0f} instances/s "
              f"(process wall {figures['wall_seconds']:.2f} s, imports included; CPU {figures['cpu_seconds']:.2f} s)")
    for name, figures in stats.items():
        print(f"{name:>9} records: " + ", ".join(f"{k}={v:.4g}" for k, v in figures.items()))
    ratio = ours_rate / reference_rate
    end_to_end = (ours["instances"] / ours["wall_seconds"]) / (reference["instances"] / reference["wall_seconds"])
    cpu_ratio = (ours["instances"] / ours["cpu_seconds"]) / (reference["instances"] / reference["cpu_seconds"])
    print(f"ratio: {ratio:.1f}x instances/s (work only), {end_to_end:.1f}x end to end, {cpu_ratio:.1f}x per CPU second")
    argv = " ".join(a for a in sys.argv[1:] if a.startswith("--"))
    print(f"reproduce: python tools/benchmark.py pretraining_data {argv}".rstrip())
    return {"ours": ours, "reference": reference, "ratio": ratio, "end_to_end_ratio": end_to_end,
            "cpu_ratio": cpu_ratio, "records": stats}
