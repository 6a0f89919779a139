"""GLUE and XNLI tasks read from their standard TSV layouts (``--task_name`` + ``--data_dir``).

google-research/bert's run_classifier.py reads CoLA, MNLI, MRPC and XNLI this way; SST-2, STS-B,
QQP, QNLI, RTE and WNLI follow the same GLUE distribution (tab-separated, no quoting: texts
contain ``"``). Each task fixes its files, columns and label set, so no column flags are needed.
Test files carry no labels: their examples have ``label=None`` and are only predicted.
"""
import csv
import dataclasses
import os

import tensorflow as tf

from bert_tf import fileio
from bert_tf.data.classification import Example
from bert_tf.errors import UserError


@dataclasses.dataclass(frozen=True)
class Split:
    path: str                  # relative to --data_dir
    text: int                  # column indices (negative counts from the end)
    text_pair: int = None
    label: int = None          # None: an unlabelled (test) split
    header: bool = True
    language: str = None       # XNLI's dev file mixes languages: keep rows whose first column is this


@dataclasses.dataclass(frozen=True)
class Task:
    labels: tuple              # () for regression
    splits: dict
    rename: tuple = ()         # (from, to) label spellings unified with the label set

    @property
    def regression(self):
        return not self.labels

    @property
    def pairs(self):
        return self.splits["train"].text_pair is not None


def _glue_pair(labels, text, pair, label, test_text, test_pair, dev="dev.tsv", test="test.tsv"):
    return Task(labels, {"train": Split("train.tsv", text, pair, label), "dev": Split(dev, text, pair, label),
                         "test": Split(test, test_text, test_pair)})


TASKS = {
    # google-research/bert's four
    "cola": Task(("0", "1"), {"train": Split("train.tsv", 3, label=1, header=False),
                              "dev": Split("dev.tsv", 3, label=1, header=False),
                              "test": Split("test.tsv", 1)}),
    "mnli": _glue_pair(("contradiction", "entailment", "neutral"), 8, 9, -1, 8, 9, dev="dev_matched.tsv",
                       test="test_matched.tsv"),
    "mrpc": _glue_pair(("0", "1"), 3, 4, 0, 3, 4),
    "xnli": Task(("contradiction", "entailment", "neutral"),
                 {"train": Split(os.path.join("multinli", "multinli.train.zh.tsv"), 0, 1, 2),
                  "dev": Split("xnli.dev.tsv", 6, 7, 1, language="zh")},
                 rename=(("contradictory", "contradiction"),)),
    # the rest of GLUE
    "sst-2": Task(("0", "1"), {"train": Split("train.tsv", 0, label=1), "dev": Split("dev.tsv", 0, label=1),
                               "test": Split("test.tsv", 1)}),
    "sts-b": _glue_pair((), 7, 8, -1, 7, 8),
    "qqp": _glue_pair(("0", "1"), 3, 4, 5, 1, 2),
    "qnli": _glue_pair(("entailment", "not_entailment"), 1, 2, -1, 1, 2),
    "rte": _glue_pair(("entailment", "not_entailment"), 1, 2, -1, 1, 2),
    "wnli": _glue_pair(("0", "1"), 1, 2, -1, 1, 2),
}
ALIASES = {"sst2": "sst-2", "stsb": "sts-b"}


def get_task(name):
    key = ALIASES.get(name.lower(), name.lower())
    if key not in TASKS:
        raise UserError(f"--task_name={name} is unknown: use one of {', '.join(TASKS)}")
    return TASKS[key]


def split_path(name, data_dir, split):
    """The file --task_name reads for ``split`` (train, dev, test) under --data_dir."""
    task = get_task(name)
    if split not in task.splits:
        raise UserError(f"--task_name={name} has no {split} split (google-research/bert's reader has none "
                        f"either): use --{split}_file with --text_column/--text_pair_column instead")
    return os.path.join(data_dir, task.splits[split].path)


def read_examples(name, data_dir, split):
    """(examples, skipped rows with an empty text) of one split of a GLUE/XNLI task."""
    task = get_task(name)
    path = split_path(name, data_dir, split)
    layout = task.splits[split]
    fileio.require_file(path, f"the {name} {split} file", fix=f"--data_dir must hold the {name} files "
                        f"({', '.join(s.path for s in task.splits.values())})")
    rename = dict(task.rename)
    examples, skipped = [], 0
    with tf.io.gfile.GFile(path, "rb") as f:
        raw = f.read()
    try:
        lines = raw.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as error:
        raise UserError(f"{path} is not UTF-8 (byte {error.start}): GLUE and XNLI files are UTF-8; re-extract the "
                        "task's archive") from None
    for number, row in enumerate(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
        if layout.header and number == 1:
            continue
        if not row:
            continue
        if layout.language and row[0] != layout.language:
            continue
        needed = [c for c in (layout.text, layout.text_pair, layout.label) if c is not None]
        if any(c >= len(row) or -c > len(row) for c in needed):
            raise UserError(f"{path}:{number} has {len(row)} tab-separated fields, too few for the {name} "
                            "layout: is this the task's own file, with tabs kept?")
        text = row[layout.text].strip()
        text_pair = row[layout.text_pair].strip() if layout.text_pair is not None else None
        if not text or text_pair == "":
            skipped += 1
            continue
        label = row[layout.label].strip() if layout.label is not None else None
        examples.append(Example(text, text_pair, rename.get(label, label), number))
    unknown = sorted({e.label for e in examples if e.label is not None} - set(task.labels)) if task.labels else []
    if unknown:
        raise UserError(f"{path} has labels {unknown[:5]} outside the {name} label set {list(task.labels)}: "
                        "check --task_name")
    return examples, skipped
