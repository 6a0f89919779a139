"""SWAG-style multiple choice (a context, N candidate endings, the index of the right one) -> TFRecords.

Rows come from TSV/CSV (header) or JSONL files through the classification reader. Columns: the
context (``--context_column``, SWAG's ``sent1``), an optional prefix put before every ending
(``--question_column``, SWAG's ``sent2``), endings ``ending0 .. ending{N-1}`` (or a JSONL list
``endings``) and an integer ``label``. Each choice is encoded as the pair
``[CLS] context [SEP] prefix ending [SEP]``, giving [choices, max_seq_length] features.
"""
import dataclasses
import re

import numpy as np
import tensorflow as tf

from bert_tf import fileio
from bert_tf.data import classification
from bert_tf.data import records
from bert_tf.errors import UserError


@dataclasses.dataclass
class ChoiceExample:
    context: str
    endings: list
    label: int = None
    line: int = 0


def _endings(row):
    if isinstance(row.get("endings"), list):
        return [str(e) for e in row["endings"]]
    numbered = sorted((int(m.group(1)), k) for k in row if (m := re.fullmatch(r"ending(\d+)", k)))
    return [str(row[k]) for _, k in numbered]


def read_examples(path, context_column="sent1", question_column="sent2", label_column="label", require_label=True,
                  encoding=None):
    """Returns the examples of a TSV/CSV/JSONL file; every row must have the same number of endings."""
    fileio.require_file(path, "multiple-choice file", "check --train_file/--dev_file/--test_file")
    examples, num_choices = [], None
    for number, row in classification._rows(path, encoding):
        if context_column not in row:
            raise UserError(f"{path} line {number} has no {context_column!r} field (fields: {sorted(row)}): set "
                            "--context_column")
        endings = _endings(row)
        if len(endings) < 2:
            raise UserError(f"{path} line {number} has {len(endings)} endings: give ending0, ending1, ... "
                            "(or a JSONL list 'endings') with two or more choices")
        num_choices = num_choices or len(endings)
        if len(endings) != num_choices:
            raise UserError(f"{path} line {number} has {len(endings)} endings but earlier rows have {num_choices}: "
                            "every question needs the same number of choices")
        prefix = str(row.get(question_column) or "").strip() if question_column else ""
        endings = [f"{prefix} {e.strip()}".strip() for e in endings]
        label = row.get(label_column)
        if label is None or str(label).strip() == "":
            if require_label:
                raise UserError(f"{path} line {number} has no {label_column!r}: label every row with the index "
                                "of the right ending")
            label = None
        else:
            try:
                label = int(label)
            except ValueError:
                raise UserError(f"{path} line {number}: label {label!r} is not an ending index") from None
            if not 0 <= label < num_choices:
                raise UserError(f"{path} line {number}: label {label} is not in 0..{num_choices - 1}")
        examples.append(ChoiceExample(str(row[context_column]).strip(), endings, label, number))
    if not examples:
        raise UserError(f"{path} has no rows: add data")
    return examples


def feature_spec(num_choices, max_seq_length):
    spec = {name: tf.io.FixedLenFeature([num_choices, max_seq_length], tf.int64)
            for name in ("input_ids", "input_mask", "segment_ids")}
    spec["label_ids"] = tf.io.FixedLenFeature([1], tf.int64)
    return spec


def convert_to_records(examples, tokenizer, max_seq_length, output_file):
    """Encodes every (context, ending) pair; returns stats (examples, truncated pairs)."""
    stats = {"num_examples": len(examples), "truncated": 0}

    def serialized():
        for example in examples:
            count = len(example.endings)
            features, truncated = tokenizer.encode([example.context] * count, example.endings, max_seq_length)
            stats["truncated"] += truncated
            features["label_ids"] = np.array([-1 if example.label is None else example.label], np.int64)
            yield records.to_example(features)

    records.write_records(output_file, serialized())
    return stats


def cached_records(examples, source_paths, cache_dir, split, tokenizer, max_seq_length):
    settings = {"task": "multiple_choice", "max_seq_length": max_seq_length, "count": len(examples),
                "choices": len(examples[0].endings)}
    return records.cached_conversion(
        cache_dir, split, source_paths, settings,
        lambda path: convert_to_records(examples, tokenizer, max_seq_length, path), items=examples,
        tokenizer=tokenizer)
