"""TFRecord features: the one atomic sharded writer and the one tf.data reader.

Record layouts follow google-research/bert (int64 ids, ``input_mask``, ``segment_ids``) so its
files and ours are interchangeable. The reader renames to the model's input names
(``attention_mask``, ``token_type_ids``) and casts int64 to int32 in small named steps.
"""
import hashlib
import os
import json
import re

import numpy as np
import tensorflow as tf
from absl import logging

from bert_tf import fileio
from bert_tf.errors import UserError

RENAMES = {"input_mask": "attention_mask", "segment_ids": "token_type_ids"}


def int_feature(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in np.ravel(values)]))


def float_feature(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in np.ravel(values)]))


def bytes_feature(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def to_example(features):
    """{name: array-like} -> tf.train.Example, ints as int64 and floats as float lists."""
    converted = {}
    for name, value in features.items():
        array = np.asarray(value)
        if array.dtype.kind in "iub":
            converted[name] = int_feature(array)
        elif array.dtype.kind == "f":
            converted[name] = float_feature(array)
        else:
            converted[name] = bytes_feature([v if isinstance(v, bytes) else str(v).encode("utf-8")
                                             for v in np.ravel(array)])
    return tf.train.Example(features=tf.train.Features(feature=converted))


def shard_paths(output_file, num_shards):
    if num_shards == 1:
        return [output_file]
    return [f"{output_file}-{i:05d}-of-{num_shards:05d}" for i in range(num_shards)]


def write_records(output_file, examples, num_shards=1, compression=None):
    """Writes serialized examples round-robin over shards; every shard appears only when all are done.

    ``examples`` yields ``tf.train.Example`` or bytes. Returns the number written.
    """
    if num_shards < 1:
        raise UserError(f"--num_output_shards={num_shards} must be at least 1")
    paths = shard_paths(output_file, num_shards)
    options = tf.io.TFRecordOptions(compression_type=compression or "")
    count = 0
    with _atomic_many(paths) as temps:
        writers = [tf.io.TFRecordWriter(t, options) for t in temps]
        try:
            for count, example in enumerate(examples, start=1):
                payload = example if isinstance(example, bytes) else example.SerializeToString()
                writers[(count - 1) % num_shards].write(payload)
        finally:
            for writer in writers:
                writer.close()
    return count


class _atomic_many:
    """atomic_path for a set of files that must appear together (the shards of one output)."""

    def __init__(self, paths):
        self.paths = paths
        self.contexts = [fileio.atomic_path(p) for p in paths]

    def __enter__(self):
        return [c.__enter__() for c in self.contexts]

    def __exit__(self, *exc):
        for context in self.contexts:
            context.__exit__(*exc)
        return False


def fixed_int_spec(names, length):
    return {name: tf.io.FixedLenFeature([length], tf.int64) for name in names}


def decode_fn(feature_spec):
    def decode(serialized):
        parsed = tf.io.parse_single_example(serialized, feature_spec)
        return {RENAMES.get(k, k): tf.cast(v, tf.int32) if v.dtype == tf.int64 else v for k, v in parsed.items()}

    return decode


def trim_to_bucket(features, boundaries, sequence_keys):
    """Cuts the padded sequence features of a batch to the smallest bucket bound that fits.

    Bounds are a few fixed values, so shapes stay from a small set XLA and TPUs can compile,
    while short-text batches stop paying for max_seq_length of padding.
    """
    length = tf.reduce_max(tf.reduce_sum(features["attention_mask"], axis=-1))
    bounds = tf.constant(sorted(boundaries), tf.int32)
    bound = tf.gather(bounds, tf.reduce_min(tf.where(bounds >= length)))
    return {k: (v[:, :bound] if k in sequence_keys else v) for k, v in features.items()}


def make_dataset(file_pattern, feature_spec, batch_size, is_training, seed=None, input_context=None,
                 drop_remainder=None, compression=None, length_buckets=None, sequence_keys=(),
                 shuffle_buffer=10000, repeat=None, skip_corrupt=False):
    """The one reader: files -> shard per pipeline -> interleave -> shuffle -> decode -> batch.

    With ``length_buckets`` (sorted bounds ending at the padded length) training examples are
    grouped by length so each batch is cut to its bucket's bound; evaluation batches keep their
    order and are cut to the bound of their longest example. With ``skip_corrupt`` a file is read up to
    its first corrupt record (TFRecord CRCs cannot resynchronise past it); the files are scanned
    once up front so what is skipped is reported and counted in ``SKIPPED_CORRUPT``.
    """
    files = fileio.expand_inputs(file_pattern) if isinstance(file_pattern, str) else list(file_pattern)
    READ_FILES.update((path, compression) for path in files)
    if skip_corrupt:
        _scan_for_skipping(files, compression)
    dataset = tf.data.Dataset.from_tensor_slices(files)
    pipelines = input_context.num_input_pipelines if input_context else 1
    shard_files = pipelines > 1 and len(files) >= pipelines
    if shard_files:
        dataset = dataset.shard(pipelines, input_context.input_pipeline_id)
    if is_training:
        dataset = dataset.shuffle(len(files), seed=seed)
    if skip_corrupt:
        read = lambda f: tf.data.TFRecordDataset(f, compression_type=compression or "").ignore_errors()  # noqa: E731
    else:
        read = lambda f: tf.data.TFRecordDataset(f, compression_type=compression or "")  # noqa: E731
    if len(files) > 1:
        dataset = dataset.interleave(read, cycle_length=min(len(files), 8), deterministic=True,
                                     num_parallel_calls=tf.data.AUTOTUNE)
    else:
        dataset = dataset.flat_map(read)
    if pipelines > 1 and not shard_files:
        # Fewer files than workers: every worker reads them all and keeps its share of records.
        dataset = dataset.shard(pipelines, input_context.input_pipeline_id)
    if is_training:
        if repeat is None or repeat:
            dataset = dataset.repeat()
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    dataset = dataset.map(decode_fn(feature_spec), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    drop = is_training if drop_remainder is None else drop_remainder
    if length_buckets and len(length_buckets) > 1 and not is_training:
        # Evaluation keeps the file's order (predictions line up with examples): each batch is
        # only cut to the bound of its longest example.
        bounds = sorted(length_buckets)
        dataset = dataset.batch(batch_size, drop_remainder=drop)
        dataset = dataset.map(lambda f: trim_to_bucket(f, bounds, set(sequence_keys)))
    elif length_buckets and len(length_buckets) > 1:
        bounds = sorted(length_buckets)

        def bucket_of(features):
            length = tf.reduce_sum(features["attention_mask"])
            return tf.cast(tf.reduce_min(tf.where(tf.constant(bounds, tf.int32) >= length)), tf.int64)

        dataset = dataset.group_by_window(
            bucket_of, lambda _, window: window.batch(batch_size, drop_remainder=drop), window_size=batch_size)
        dataset = dataset.map(lambda f: trim_to_bucket(f, bounds, set(sequence_keys)))
    else:
        dataset = dataset.batch(batch_size, drop_remainder=drop)
    return dataset.prefetch(tf.data.AUTOTUNE)


# (path, compression) of every file make_dataset opened in this process, to name a corrupt one.
READ_FILES = set()
# {path: index of its first corrupt record} for files read with skip_corrupt.
SKIPPED_CORRUPT = {}


def scan_records(path, compression=None):
    """(number of readable records, index of the first corrupt record or None); CRCs are checked.

    TensorFlow's reader takes a file cut inside a record's length header for a clean end, so for
    uncompressed files the framing is also walked to the last byte.
    """
    count = 0
    try:
        for _ in tf.data.TFRecordDataset(path, compression_type=compression or ""):
            count += 1
    except tf.errors.DataLossError:
        return count, count
    if not compression and _framed_bytes(path, count) != tf.io.gfile.stat(path).length:
        return count, count
    return count, None


def _framed_bytes(path, count):
    """Bytes taken by the first ``count`` records: 8-byte length, 4-byte CRC, payload, 4-byte CRC each."""
    position = 0
    with tf.io.gfile.GFile(path, "rb") as f:
        for _ in range(count):
            f.seek(position)
            position += 8 + 4 + int.from_bytes(f.read(8), "little") + 4
    return position


def count_records(path, compression=None):
    """Reads every record (CRCs checked); names the file and record index of the first bad one."""
    count, bad = scan_records(path, compression)
    if bad is not None:
        raise UserError(f"TFRecord file {path} is corrupt at record {bad}: regenerate it")
    return count


def describe_corruption(error):
    """A one-line message for a DataLossError met while training: which file, which record."""
    match = re.search(r"(corrupted|truncated) record at \d+", str(error))
    detail = f"{match.group(0)} bytes" if match else str(error).strip().splitlines()[0][:200]
    for path, compression in sorted(READ_FILES, key=lambda item: item[0]):
        _, bad = scan_records(path, compression)
        if bad is not None:
            return (f"TFRecord file {path} is corrupt at record {bad} ({detail}): regenerate it, or pass "
                    "--skip_corrupt_records to train on the records before the damage")
    return f"the training data is corrupt ({detail}): regenerate it, or pass --skip_corrupt_records"


def _scan_for_skipping(files, compression):
    for path in files:
        if path in SKIPPED_CORRUPT:
            continue
        _, bad = scan_records(path, compression)
        if bad is not None:
            SKIPPED_CORRUPT[path] = bad
            logging.warning("--skip_corrupt_records: %s is corrupt at record %d; its remaining records are "
                            "skipped", path, bad)


def content_key(paths, settings):
    """A cache key from the input files' bytes and the conversion settings."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in paths:
        with tf.io.gfile.GFile(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def cached_conversion(cache_dir, split, source_paths, settings, convert):
    """Runs ``convert(records_path) -> stats`` once per (input file bytes, settings).

    Returns (records path, stats). The stats file is written last: it is the completion marker
    a rerun trusts, so an interrupted conversion is redone rather than half-read.
    """
    key = content_key(source_paths, settings)
    path = os.path.join(cache_dir, f"{split}-{key}.tfrecord")
    meta_path = path + ".json"
    if tf.io.gfile.exists(meta_path) and tf.io.gfile.exists(path):
        return path, fileio.read_json(meta_path)
    fileio.ensure_dir(cache_dir)
    stats = convert(path)
    fileio.write_json(meta_path, stats)
    return path, stats
