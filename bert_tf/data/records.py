"""Reading TFRecord features: the one tf.data reader, and where a resumed run's input starts.

Record layouts follow google-research/bert (int64 ids, ``input_mask``, ``segment_ids``) so its
files and ours are interchangeable. The reader renames to the model's input names
(``attention_mask``, ``token_type_ids``) and casts int64 to int32 in small named steps.

Writing (record_writer.py), checking (record_integrity.py) and the conversion cache
(conversion_cache.py) live beside it; their names are re-exported for the callers that read
them as ``records.X``.
"""
import tensorflow as tf

from bert_tf import fileio
from bert_tf.data.conversion_cache import cached_conversion, content_key, tokenizer_key  # noqa: F401
from bert_tf.data.record_integrity import count_records, find_corrupt, scan_records  # noqa: F401
from bert_tf.data.record_writer import (  # noqa: F401
    bytes_feature, float_feature, int_feature, shard_paths, to_example, write_records)

RENAMES = {"input_mask": "attention_mask", "segment_ids": "token_type_ids"}


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


class InputPosition(tf.distribute.InputContext):
    """An input context that also says where a resumed run's input starts: after ``global_batches``.

    The trainer hands one to ``dataset_fn``; ``make_dataset`` places its pipeline there by
    arithmetic (whole shuffle windows skipped as raw records, which TFRecord readers seek past
    without decoding) and marks it ``placed``, so the trainer only replays a pipeline that did not.
    It also notes what the pipeline reads, for the trainer to name a corrupt file: ``files``
    ((path, compression) pairs) and ``skipped_corrupt`` ({path: first corrupt record}, with
    ``skip_corrupt``).
    """

    def __init__(self, context, global_batches):
        context = context or tf.distribute.InputContext()
        super().__init__(context.num_input_pipelines, context.input_pipeline_id, context.num_replicas_in_sync)
        self.global_batches = global_batches
        self.placed = False
        self.files = set()
        self.skipped_corrupt = {}

    @property
    def local_batches(self):
        """Elements this pipeline produced so far: one per-replica batch for each of its replicas per step."""
        return self.global_batches * self.num_replicas_in_sync // self.num_input_pipelines


def local_batches_consumed(input_context):
    """Per-replica batches this pipeline already produced in the run being resumed (0 on a fresh run),
    for streams zipped onto a placed pipeline (dynamic masking's seeds) to start at the same point."""
    return input_context.local_batches if isinstance(input_context, InputPosition) else 0


# Seeds of the separate random choices (file order per epoch, order within a shuffle window,
# batch order within a bucketing window), so that one does not echo another.
_FILE_ORDER, _WINDOW_ORDER, _BATCH_ORDER = 1, 2, 3
# Global batches per bucketing window: with group_by_length, examples of a window are grouped by
# bucket and cut into batches, so more batches per window means fewer batches straddling two buckets.
BUCKET_WINDOW_BATCHES = 64
# Records shuffled together (each window by its own permutation) unless the caller passes another
# ``shuffle_buffer``; a fine-tuning job passes its epoch size when smaller, so that epochs stay apart.
SHUFFLE_WINDOW = 10000


def _permutation(size, seed, salt, index):
    """A seeded permutation of ``range(size)``, a pure function of (seed, salt, index)."""
    key = tf.stack([tf.constant(seed * 4 + salt, tf.int64), tf.cast(index, tf.int64)])
    return tf.argsort(tf.random.stateless_uniform([size], seed=key))


def _read_fn(compression, skip_corrupt):
    if skip_corrupt:
        return lambda f: tf.data.TFRecordDataset(f, compression_type=compression or "").ignore_errors()
    return lambda f: tf.data.TFRecordDataset(f, compression_type=compression or "")


def _shuffled_records(files, seed, repeat, read, window, start, shard=None):
    """Serialized records in training order, from record ``start`` of this stream on.

    Files are read one after another in an order drawn anew for each epoch; records are shuffled
    within consecutive windows of ``window`` records, each by its own seeded permutation. Every
    choice is a function of (seed, epoch or window index), so record n is the same whenever the
    stream is built, and starting at n skips whole windows unread (TFRecord readers seek past
    records without parsing them: about 5 s for 25M records) before shuffling one window.
    ``shard`` (count, index) keeps every count-th record, for more pipelines than files.
    """
    names = tf.constant(files)

    def epoch(index):
        order = _permutation(len(files), seed, _FILE_ORDER, index)
        return tf.data.Dataset.from_tensor_slices(tf.gather(names, order)).flat_map(read)

    stream = tf.data.Dataset.range(2 ** 62 if repeat else 1).flat_map(epoch)
    count, index = shard or (1, 0)
    windows_done, rest = divmod(start, window)
    stream = stream.skip(windows_done * window * count)
    if count > 1:
        stream = stream.shard(count, index)

    def shuffle(window_index, records):
        return tf.gather(records, _permutation(tf.shape(records)[0], seed, _WINDOW_ORDER, window_index))

    stream = stream.batch(window).enumerate(start=windows_done).map(shuffle).unbatch()
    return stream.skip(rest)


def _global_batches_by_length(examples, global_batch, bounds, seed, sequence_keys, start):
    """Global batches of examples of similar length, each cut to its bucket bound, from batch ``start`` on
    (``examples`` already start at the window holding it).

    ``examples`` (decoded, in training order) are taken in windows of BUCKET_WINDOW_BATCHES global
    batches, grouped by bucket (in their shuffled order within a bucket), cut into batches whose
    order is then shuffled. Grouping by bucket rather than sorting by exact length costs no more
    padding (a batch is cut to its bucket's bound either way) and keeps each batch a random sample of
    its bucket (docs/finetuning_results.md, quality ablation). Every replica's slice of a step comes
    from one such batch, so all replicas of a step get the same sequence length, one of a few fixed
    bounds (static shapes for XLA and TPUs).
    """
    per_window = BUCKET_WINDOW_BATCHES * global_batch

    def batches(window_index, window):
        lengths = tf.reduce_sum(window["attention_mask"], axis=-1)
        kept = tf.shape(lengths)[0] // global_batch * global_batch
        buckets = tf.searchsorted(tf.constant(bounds, lengths.dtype), lengths, side="left")
        order = tf.argsort(buckets, stable=True)[:kept]
        sorted_window = {k: tf.gather(v, order) for k, v in window.items()}
        shaped = {k: tf.reshape(v, tf.concat([[-1, global_batch], tf.shape(v)[1:]], 0))
                  for k, v in sorted_window.items()}
        batch_order = _permutation(tf.shape(shaped["attention_mask"])[0], seed, _BATCH_ORDER, window_index)
        return tf.data.Dataset.from_tensor_slices({k: tf.gather(v, batch_order) for k, v in shaped.items()})

    windows_done, rest = divmod(start, BUCKET_WINDOW_BATCHES)
    dataset = examples.batch(per_window).enumerate(start=windows_done).flat_map(batches).skip(rest)
    return dataset.map(lambda f: trim_to_bucket(f, bounds, set(sequence_keys)))


def make_dataset(file_pattern, feature_spec, batch_size, is_training, seed=None, input_context=None,
                 drop_remainder=None, compression=None, length_buckets=None, sequence_keys=(),
                 shuffle_buffer=None, repeat=None, skip_corrupt=False, group_by_length=True):
    """The one reader: files -> records in training or file order -> decode -> per-replica batches.

    ``batch_size`` is per replica. Training data is shuffled deterministically from ``seed`` (see
    ``_shuffled_records``) and, given an ``InputPosition``, starts where the resumed run stopped
    without decoding what came before. With ``length_buckets`` (sorted bounds ending at the padded
    length) each *global* training batch is cut to the bound of its longest example before it is
    split over replicas (``group_by_length`` also fills each batch from one bucket: less padding,
    but batches of one length class, which cost short runs quality), so every pipeline reads all files and keeps its
    replicas' slices; without buckets files (or records, if fewer files than pipelines) are
    sharded over pipelines. Evaluation batches keep the file order and are cut to the bound of
    their longest example. With ``skip_corrupt`` a file is read up to its first corrupt record
    (TFRecord CRCs cannot resynchronise past it); the files are scanned once up front so what is
    skipped is reported, and counted in an ``InputPosition``'s ``skipped_corrupt``.
    """
    files = fileio.expand_inputs(file_pattern) if isinstance(file_pattern, str) else list(file_pattern)
    shuffle_buffer = shuffle_buffer or SHUFFLE_WINDOW
    position = input_context if isinstance(input_context, InputPosition) else InputPosition(None, 0)
    position.files.update((path, compression) for path in files)
    if skip_corrupt:
        find_corrupt(files, compression, position.skipped_corrupt)
    read = _read_fn(compression, skip_corrupt)
    decode = decode_fn(feature_spec)
    bounds = sorted(length_buckets) if length_buckets and len(length_buckets) > 1 else None
    if is_training:
        dataset = _training_batches(files, decode, read, batch_size, seed or 0, input_context, bounds,
                                    sequence_keys, shuffle_buffer, repeat is None or repeat,
                                    True if drop_remainder is None else drop_remainder, group_by_length)
        return dataset.prefetch(tf.data.AUTOTUNE)
    dataset = tf.data.Dataset.from_tensor_slices(files)
    pipelines = input_context.num_input_pipelines if input_context else 1
    shard_files = pipelines > 1 and len(files) >= pipelines
    if shard_files:
        dataset = dataset.shard(pipelines, input_context.input_pipeline_id)
    if len(files) > 1:
        dataset = dataset.interleave(read, cycle_length=min(len(files), 8), deterministic=True,
                                     num_parallel_calls=tf.data.AUTOTUNE)
    else:
        dataset = dataset.flat_map(read)
    if pipelines > 1 and not shard_files:
        # Fewer files than workers: every worker reads them all and keeps its share of records.
        dataset = dataset.shard(pipelines, input_context.input_pipeline_id)
    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.batch(batch_size, drop_remainder=bool(drop_remainder))
    if bounds:
        # Predictions line up with examples: each batch is only cut to its longest example's bound.
        dataset = dataset.map(lambda f: trim_to_bucket(f, bounds, set(sequence_keys)))
    return dataset.prefetch(tf.data.AUTOTUNE)


def _training_batches(files, decode, read, batch_size, seed, input_context, bounds, sequence_keys, window,
                      repeat, drop, group_by_length=True):
    context = input_context or tf.distribute.InputContext()
    pipelines, pipeline = context.num_input_pipelines, context.input_pipeline_id
    replicas = context.num_replicas_in_sync
    global_batches = 0
    if isinstance(input_context, InputPosition):
        global_batches, input_context.placed = input_context.global_batches, True
    if bounds:
        # Every pipeline builds the same global batches and keeps its own replicas' slices.
        global_batch = batch_size * replicas

        def examples_from(records_done):
            return _shuffled_records(files, seed, repeat, read, window, records_done).map(
                decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

        if group_by_length:
            # Read from the start of the bucketing window that holds the resumed batch.
            windows_done = global_batches // BUCKET_WINDOW_BATCHES
            batches = _global_batches_by_length(examples_from(windows_done * BUCKET_WINDOW_BATCHES * global_batch),
                                                global_batch, bounds, seed, sequence_keys, global_batches)
        else:
            # Consecutive records of the shuffled stream: an epoch's batches hold that epoch's records,
            # where a bucketing window (64 batches, reordered) would straddle the end of a small epoch.
            batches = examples_from(global_batches * global_batch).batch(global_batch, drop_remainder=True).map(
                lambda f: trim_to_bucket(f, bounds, set(sequence_keys)))
        local = replicas // pipelines
        first, last = pipeline * local * batch_size, (pipeline + 1) * local * batch_size

        def local_slices(features):
            return {k: tf.reshape(v[first:last], tf.concat([[local, batch_size], tf.shape(v)[1:]], 0))
                    for k, v in features.items()}

        return batches.map(local_slices).unbatch()
    local_batches = global_batches * replicas // pipelines
    if pipelines > 1 and len(files) >= pipelines:
        files, shard = files[pipeline::pipelines], None
    else:
        # Fewer files than pipelines: every pipeline reads them all and keeps its share of records.
        shard = (pipelines, pipeline) if pipelines > 1 else None
    examples = _shuffled_records(files, seed, repeat, read, window, local_batches * batch_size, shard)
    examples = examples.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return examples.batch(batch_size, drop_remainder=drop)

