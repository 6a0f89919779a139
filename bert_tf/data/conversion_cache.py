"""The conversion cache: records converted once per (input bytes, settings, items, tokenizer)."""
import hashlib
import json
import os

import tensorflow as tf

from bert_tf import fileio


def content_key(paths, settings, items=()):
    """A cache key from the input files' bytes, the conversion settings and the items converted.

    ``items`` are the examples the conversion reads (``repr`` of each: text, pair, label, ...), so
    everything that chose them -- columns, a tfds name or version, --max_train_examples, a reader
    added later -- is in the key without being listed.
    """
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in paths:
        with tf.io.gfile.GFile(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    for item in items:
        digest.update(repr(item).encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()[:16]


def tokenizer_key(tokenizer):
    """What of a tokenizer decides the ids it produces: its vocab's bytes, its casing, its kind."""
    return {"vocab": content_key([tokenizer.vocab_file], {}), "lower": bool(tokenizer.do_lower_case),
            "kind": type(tokenizer).__name__}


def cached_conversion(cache_dir, split, source_paths, settings, convert, items=(), tokenizer=None):
    """Runs ``convert(records_path) -> stats`` once per (input file bytes, settings, items, tokenizer).

    The one place a conversion's cache key is made: callers pass every setting the conversion
    reads (lengths, label list, task options) and the ``items`` it converts; the tokenizer's
    vocab and casing are added here. Returns (records path, stats). The stats file is written
    last: it is the completion marker a rerun trusts, so an interrupted conversion is redone
    rather than half-read.
    """
    settings = dict(settings, split=split)
    if tokenizer is not None:
        settings["tokenizer"] = tokenizer_key(tokenizer)
    key = content_key(source_paths, settings, items)
    path = os.path.join(cache_dir, f"{split}-{key}.tfrecord")
    meta_path = path + ".json"
    if tf.io.gfile.exists(meta_path) and tf.io.gfile.exists(path):
        return path, fileio.read_json(meta_path)
    fileio.ensure_dir(cache_dir)
    stats = convert(path)
    fileio.write_json(meta_path, stats)
    return path, stats
