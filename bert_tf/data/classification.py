"""Labelled text files (TSV, CSV, JSONL) or tfds datasets -> examples -> cached TFRecords.

Files carry a header; GLUE-style ``sentence``/``label`` files such as SST-2 read as they are.
Every malformed input is an error naming the file and line, except the ones a user would rather
have skipped and counted (empty texts, labels unseen in training at evaluation time).
"""
import csv
import dataclasses
import io
import json
import math
import sys

import numpy as np
import tensorflow as tf

from bert_tf import fileio
from bert_tf.data import records, text_files
from bert_tf.errors import UserError

# Result files list this many distinct unseen labels; the count covers them all.
MAX_UNSEEN_LABELS_SHOWN = 20

csv.field_size_limit(sys.maxsize)


@dataclasses.dataclass
class Example:
    text: str
    text_pair: str = None
    label: str = None
    line: int = 0


def _rows(path, encoding=None):
    """Yields (line number, {column: value}) from TSV/CSV/JSONL, checking header and widths."""
    lines = text_files.read_lines(path, encoding)
    if not any(line.strip() for line in lines):
        raise UserError(f"{path} is empty: it needs a header line and at least one row")
    if path.endswith((".jsonl", ".json")):
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise UserError(f"{path} line {number} is not valid JSON ({error.msg}): one object per line") from None
            if not isinstance(row, dict):
                raise UserError(f"{path} line {number} is not a JSON object: one object per line")
            yield number, row
        return
    delimiter = "," if path.endswith(".csv") else "\t"
    quoting = csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
    if delimiter == "\t" and text_files.tab_like_lines(lines[:1]):
        raise text_files.tab_like_error(path, text_files.tab_like_lines(lines[:1]))
    reader = csv.reader(io.StringIO("\n".join(lines) + "\n", newline=""), delimiter=delimiter, quoting=quoting)
    header = [h.strip() for h in next(reader)]
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise UserError(f"{path} header repeats column(s) {duplicated}: give every column a unique name")
    for row in reader:
        number = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(header):
            if delimiter == "\t" and len(row) == 1 and text_files.tab_like_lines([row[0]]):
                raise text_files.tab_like_error(path, [(n, c) for n, c in text_files.tab_like_lines(lines)
                                                       if "\t" not in lines[n - 1] and len(header) > 1])
            raise UserError(f"{path} line {number} has {len(row)} fields but the header has {len(header)}: "
                            f"fix the row (fields are {'tab' if delimiter == chr(9) else 'comma'}-separated)")
        yield number, dict(zip(header, row))


def read_examples(path, text_column="sentence", text_pair_column=None, label_column="label", require_label=True,
                  encoding=None):
    """Returns (examples, number of rows skipped for an empty text); ``encoding`` as ``--encoding``."""
    fileio.require_file(path, "data file", "check --train_file/--dev_file/--test_file")
    examples, skipped, columns = [], 0, None
    for number, row in _rows(path, encoding):
        if columns is None:
            columns = list(row)
            wanted = [c for c in (text_column, text_pair_column) if c] + ([label_column] if require_label else [])
            missing = [c for c in wanted if c not in row]
            if missing:
                raise UserError(f"{path} has no column {missing[0]!r} (columns: {columns}): set "
                                "--text_column/--text_pair_column/--label_column")
        text = str(row.get(text_column) or "").strip()
        pair = str(row.get(text_pair_column) or "").strip() if text_pair_column else None
        if not text or (text_pair_column and not pair):
            skipped += 1
            continue
        label = row.get(label_column)
        label = None if label is None else str(label).strip()
        if require_label and not label:
            raise UserError(f"{path} line {number} has an empty {label_column!r}: label every row")
        examples.append(Example(text, pair, label, number))
    if columns is None:
        raise UserError(f"{path} has a header but no rows: add data")
    if not examples:
        raise UserError(f"{path} has no usable rows (all {skipped} texts are empty)")
    return examples, skipped


def read_tfds_examples(name, split, data_dir=None, text_column="sentence", text_pair_column=None,
                       label_column="label"):
    """Reads a tensorflow-datasets split prepared offline (``--tfds_data_dir``); never downloads."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
        dataset = builder.as_dataset(split=split)
    except (AssertionError, ValueError, tf.errors.NotFoundError, tfds.core.registered.DatasetNotFoundError) as error:
        raise UserError(f"--tfds_name={name} split {split} is not prepared in {data_dir or '~/tensorflow_datasets'} "
                        f"({str(error).splitlines()[0][:120]}): prepare it with `tfds build` or pass --tfds_data_dir") \
            from None
    names = builder.info.features[label_column].names if hasattr(builder.info.features[label_column], "names") \
        else None
    examples = []
    for index, item in enumerate(tfds.as_numpy(dataset)):
        label = item[label_column]
        label = names[int(label)] if names is not None and int(label) >= 0 else str(label)
        pair = item[text_pair_column].decode("utf-8") if text_pair_column else None
        examples.append(Example(item[text_column].decode("utf-8"), pair, label if int(
            item[label_column]) >= 0 else None, index))
    return examples, 0


def label_list_from(examples):
    """Sorted label strings; numerically when every label is an integer ("2" before "10")."""
    labels = {e.label for e in examples}
    try:
        return sorted(labels, key=int)
    except ValueError:
        return sorted(labels)


def feature_spec(max_seq_length, regression=False):
    spec = records.fixed_int_spec(("input_ids", "input_mask", "segment_ids"), max_seq_length)
    if regression:
        spec["label_values"] = tf.io.FixedLenFeature([1], tf.float32)
    else:
        spec["label_ids"] = tf.io.FixedLenFeature([1], tf.int64)
    return spec


def convert_to_records(examples, tokenizer, max_seq_length, output_file, label_list=None, regression=False,
                       batch_size=2048):
    """Tokenizes and writes examples; returns stats (counts of examples, truncations, unseen labels)."""
    label_map = {label: i for i, label in enumerate(label_list or [])}
    stats = {"num_examples": len(examples), "truncated": 0, "unseen_labels": 0, "unseen_label_values": []}

    def serialized():
        for start in range(0, len(examples), batch_size):
            chunk = examples[start:start + batch_size]
            pairs = [e.text_pair for e in chunk] if chunk[0].text_pair is not None else None
            features, truncated = tokenizer.encode([e.text for e in chunk], pairs, max_seq_length)
            stats["truncated"] += truncated
            for row, example in enumerate(chunk):
                values = {k: v[row] for k, v in features.items()}
                if regression:
                    values["label_values"] = np.array([float_label(example)], np.float32)
                else:
                    label_id = label_map.get(example.label, -1)
                    if label_id < 0 and example.label is not None:
                        stats["unseen_labels"] += 1
                        if example.label not in stats["unseen_label_values"] \
                                and len(stats["unseen_label_values"]) < MAX_UNSEEN_LABELS_SHOWN:
                            stats["unseen_label_values"].append(example.label)
                    values["label_ids"] = np.array([label_id], np.int64)
                yield records.to_example(values)

    records.write_records(output_file, serialized())
    return stats


def float_label(example):
    """A regression example's label as a float; a word, NaN or an infinity is refused with its line."""
    if example.label is None:
        return 0.0
    try:
        value = float(example.label)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):
        raise UserError(f"line {example.line}: regression label {example.label!r} is not a number: fix the row "
                        "or use --task_type=classification")
    return value


def cached_records(examples, source_paths, cache_dir, split, tokenizer, max_seq_length, label_list, regression,
                   source=None):
    """Converts once per (file contents, examples, settings); returns (records path, stats).

    ``source``: how the job read the examples (columns, tfds name), recorded in the key as well.
    """
    settings = {"max_seq_length": max_seq_length, "labels": label_list, "regression": regression,
                "count": len(examples), "source": source}
    return records.cached_conversion(
        cache_dir, split, source_paths, settings,
        lambda path: convert_to_records(examples, tokenizer, max_seq_length, path, label_list, regression),
        items=examples, tokenizer=tokenizer)
