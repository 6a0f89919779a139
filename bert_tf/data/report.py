"""A look at fine-tuning data before training: what ``tools/inspect_data.py`` prints and every
fine-tuning job writes to output_dir/data_report.json and data_report.png.

Per split (train, dev, test): rows, counts per label, rows dropped for an empty text, rows without a
label, duplicate rows (same texts as an earlier row of the split; ``conflicting`` when their labels
differ), the length in word pieces (special tokens included; percentiles), and how many rows do not
fit ``--max_seq_length`` (truncated; for SQuAD, contexts cut into more than one window). Across
splits: rows of dev/test whose texts also occur in train (after collapsing whitespace).

Labels by task (``label_unit`` says what is counted): classification its labels (rows); tagging
the tags of all words (words); SQuAD ``answerable`` / ``unanswerable``; multiple choice the index of
the right ending. Warnings: the most frequent training label at least 10x the least (tagging's "O"
left out), at least 1% of dev/test also in train, at least 5% of a split over --max_seq_length.

Each file is read by the same reader the job uses, so the report sees what training sees.
"""
import collections
import dataclasses
import os

import numpy as np

from bert_tf import distribute, errors, fileio
from bert_tf.data import classification, multiple_choice, squad, tagging

REPORT_JSON = "data_report.json"
REPORT_PNG = "data_report.png"
PERCENTILES = (50, 90, 95, 99)
# One-line warnings fire above these.
IMBALANCE_RATIO = 10.0  # most / least frequent training label
OVERLAP_SHARE = 0.01  # of a dev/test split found in train
TRUNCATED_SHARE = 0.05  # of a split longer than --max_seq_length


@dataclasses.dataclass
class Row:
    texts: tuple  # the row's strings; duplicates and overlap compare these
    labels: list  # usually one label; every tag of a sentence for tagging; [] when unlabelled
    segments: tuple = None  # strings packed into one sequence (default: texts); lengths come from these
    choices: list = None  # multiple choice: one segments tuple per ending; the longest counts


@dataclasses.dataclass
class Split:
    name: str
    path: str
    rows: list
    empty: int = 0  # rows the reader dropped because a text was empty


# -- reading, per task --------------------------------------------------------------------------------

def _encoding(flags):
    """The job's --encoding, for the jobs that have one."""
    return {"encoding": flags.encoding} if hasattr(flags, "encoding") else {}


def _classification(flags, split, path):
    examples, skipped = classification.read_examples(path, flags.text_column, flags.text_pair_column,
                                                     flags.label_column, require_label=False, **_encoding(flags))
    rows = [Row((e.text,) if e.text_pair is None else (e.text, e.text_pair), [e.label] if e.label else [])
            for e in examples]
    return Split(split, path, rows, skipped)


def _tagging(flags, split, path):
    sentences = tagging.read_conll(path, require_tags=False, **_encoding(flags))
    return Split(split, path, [Row((" ".join(s.words),), list(s.tags or [])) for s in sentences])


def _squad(flags, split, path):
    examples, _ = squad.read_squad(path, False, flags.version_2_with_negative, **_encoding(flags))
    rows = []
    for e in examples:
        label = "unanswerable" if e.is_impossible else ("answerable" if e.answers else None)
        rows.append(Row((e.question, e.context), [label] if label else []))
    return Split(split, path, rows)


def _multiple_choice(flags, split, path):
    examples = multiple_choice.read_examples(path, flags.context_column, flags.question_column, flags.label_column,
                                             require_label=False, **_encoding(flags))
    return Split(split, path, [Row((e.context, *e.endings), [] if e.label is None else [str(e.label)],
                                   choices=[(e.context, ending) for ending in e.endings]) for e in examples])


READERS = {"classification": _classification, "regression": _classification, "tagging": _tagging,
           "squad": _squad, "multiple_choice": _multiple_choice}


def read_splits(flags, task):
    """Splits of the --train_file/--dev_file (or SQuAD's --predict_file)/--test_file given; train cut to
    --max_train_examples."""
    # SQuAD's --predict_file stands in for --dev_file (and --test_file, the same file: reported once).
    files = {"train": flags.train_file,
             "dev": getattr(flags, "dev_file", None) or getattr(flags, "predict_file", None),
             "test": getattr(flags, "test_file", None)}
    splits = [READERS[task](flags, split, path) for split, path in files.items() if path]
    for split in splits:
        if split.name == "train" and getattr(flags, "max_train_examples", None):
            split.rows = split.rows[:flags.max_train_examples]  # what training will see, as the jobs cut it
    return splits


# -- measuring ----------------------------------------------------------------------------------------

def _key(texts):
    return tuple(" ".join(t.split()) for t in texts)


def _lengths(rows, tokenizer, max_query_length=None):
    """Word pieces per row, [CLS]/[SEP] included; the longest choice for multiple choice."""
    sequences = [[r.segments or r.texts] if r.choices is None else r.choices for r in rows]
    strings = sorted({s for seqs in sequences for seq in seqs for s in seq})
    counts = dict(zip(strings, (len(ids) for ids in tokenizer.tokenize_ids(strings)))) if strings else {}

    def length(seq):
        pieces = [counts[s] for s in seq]
        if max_query_length and len(pieces) == 2:  # SQuAD: the question is cut first
            pieces[0] = min(pieces[0], max_query_length)
        return sum(pieces) + len(seq) + 1

    return np.array([max(length(seq) for seq in seqs) for seqs in sequences], dtype=np.int64)


def _split_report(split, tokenizer, max_seq_length, max_query_length=None):
    rows = split.rows
    seen, duplicates, conflicting = {}, 0, 0
    for row in rows:
        key = _key(row.texts)
        if key in seen:
            duplicates += 1
            conflicting += seen[key] != row.labels
        else:
            seen[key] = row.labels
    lengths = _lengths(rows, tokenizer, max_query_length)
    counts = collections.Counter(label for row in rows for label in row.labels)
    truncated = int((lengths > max_seq_length).sum())
    return {
        "file": os.path.basename(split.path), "rows": len(rows),
        "label_counts": dict(sorted(counts.items())),
        "empty_rows": split.empty, "unlabelled_rows": sum(not row.labels for row in rows),
        "duplicate_rows": duplicates, "conflicting_duplicates": conflicting,
        "length_pieces": {"min": int(lengths.min()), "mean": round(float(lengths.mean()), 2),
                          **{f"p{p}": round(float(np.percentile(lengths, p)), 2) for p in PERCENTILES},
                          "max": int(lengths.max())},
        "truncated_rows": truncated, "truncated_share": round(truncated / len(rows), 4),
    }, lengths


def build_report(splits, tokenizer, max_seq_length, task, max_query_length=None):
    """(report dict, {split: lengths}) for ``splits``; the report's ``warnings`` are one line each."""
    report = {"task": task, "max_seq_length": max_seq_length, "label_unit": "words" if task == "tagging" else "rows",
              "splits": {}, "overlap_with_train": {}, "warnings": []}
    lengths = {}
    for split in splits:
        report["splits"][split.name], lengths[split.name] = _split_report(split, tokenizer, max_seq_length,
                                                                          max_query_length)
    train = next((s for s in splits if s.name == "train"), None)
    if train is not None:
        train_keys = {_key(row.texts) for row in train.rows}
        for split in splits:
            if split.name != "train":
                shared = sum(_key(row.texts) in train_keys for row in split.rows)
                report["overlap_with_train"][split.name] = {"rows": shared,
                                                            "share": round(shared / len(split.rows), 4)}
    report["warnings"] = _warnings(report)
    return report, lengths


def _warnings(report):
    warnings = []
    unit = report["label_unit"]
    train = report["splits"].get("train")
    # Tagging's "O" outnumbers entity tags by design; imbalance among the other tags still matters.
    counts = {k: v for k, v in (train or {}).get("label_counts", {}).items()
              if not (report["task"] == "tagging" and k == "O")}
    if len(counts) >= 2 and report["task"] != "regression":
        most, least = max(counts, key=counts.get), min(counts, key=counts.get)
        if counts[most] >= IMBALANCE_RATIO * counts[least]:
            warnings.append(f"heavy label imbalance in train: {most!r} has {counts[most]} {unit}, {least!r} "
                            f"{counts[least]} ({counts[most] / counts[least]:.0f}x)")
    for name, overlap in report["overlap_with_train"].items():
        if overlap["share"] >= OVERLAP_SHARE:
            warnings.append(f"{overlap['rows']} of {report['splits'][name]['rows']} {name} rows "
                            f"({100 * overlap['share']:.1f}%) also occur in train: {name} scores will be optimistic")
    cut = "are cut into several windows" if report["task"] == "squad" else "get cut"
    for name, split in report["splits"].items():
        if split["truncated_share"] >= TRUNCATED_SHARE:
            warnings.append(f"{100 * split['truncated_share']:.1f}% of {name} rows are longer than "
                            f"--max_seq_length={report['max_seq_length']} word pieces (p99 "
                            f"{split['length_pieces']['p99']:.0f}) and {cut}")
    return warnings


# -- writing ------------------------------------------------------------------------------------------

def write_report(output_dir, report, lengths):
    """data_report.json, and data_report.png: label counts per split (left), word-piece length
    histograms with --max_seq_length (right)."""
    fileio.write_json(os.path.join(output_dir, REPORT_JSON), report)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names = list(report["splits"])
    labels = sorted({label for s in report["splits"].values() for label in s["label_counts"]})
    shown = labels[:30]  # tag sets and regression targets can be long; the JSON has them all
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        counts = report["splits"][name]["label_counts"]
        left.bar(np.arange(len(shown)) + i * width, [counts.get(label, 0) for label in shown], width, label=name)
    left.set_xticks(np.arange(len(shown)) + 0.4 - width / 2, shown, rotation=45 if len(shown) > 6 else 0,
                    ha="right" if len(shown) > 6 else "center", parse_math=False)  # labels are data, not mathtext
    left.set_title("rows per label" + (f" (first {len(shown)} of {len(labels)})" if len(labels) > len(shown) else ""))
    left.legend()
    top = max(int(max(v.max() for v in lengths.values())), report["max_seq_length"]) + 1
    bins = np.linspace(0, top, 40)
    for name in names:
        right.hist(lengths[name], bins=bins, alpha=0.5, label=name)
    right.axvline(report["max_seq_length"], color="black", linestyle="--", label="--max_seq_length")
    right.set_xlabel("word pieces per example")
    right.set_title("length")
    right.legend()
    figure.tight_layout()
    try:
        fileio.write_png(os.path.join(output_dir, REPORT_PNG), figure, dpi=90)
    finally:
        plt.close(figure)


def summary_lines(report):
    """The short printout: one line per split (the warnings go separately, through errors.warn)."""
    lines = []
    for name, s in report["splits"].items():
        labels = ", ".join(f"{k}={v}" for k, v in list(s["label_counts"].items())[:8])
        more = len(s["label_counts"]) - 8
        lines.append(f"{name}: {s['rows']} rows; {report['label_unit']} per label: {labels or '-'}"
                     f"{f', +{more} more' if more > 0 else ''}; word pieces "
                     f"p50 {s['length_pieces']['p50']:.0f} p95 {s['length_pieces']['p95']:.0f} max "
                     f"{s['length_pieces']['max']}; {s['truncated_rows']} over {report['max_seq_length']}; "
                     f"{s['empty_rows']} empty, {s['duplicate_rows']} duplicate"
                     + (f", {report['overlap_with_train'][name]['rows']} also in train"
                        if name in report["overlap_with_train"] else ""))
    return lines


def print_report(report, prefix=""):
    for line in summary_lines(report):
        print(f"{prefix}{line}")
    for warning in report["warnings"]:
        errors.warn(warning)


def report_job_data(flags, tokenizer, task, strategy=None):
    """What every fine-tuning job runs first: the report of its data files into --output_dir (the chief
    writes and prints)."""
    splits = read_splits(flags, task)
    if not splits:
        return None
    report, lengths = build_report(splits, tokenizer, flags.max_seq_length, task,
                                   getattr(flags, "max_query_length", None) if task == "squad" else None)
    if strategy is None or distribute.is_chief(strategy):
        write_report(flags.output_dir, report, lengths)
        print_report(report, prefix="data: ")
    return report
