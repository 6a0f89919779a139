"""The pretraining record codec: bert_tf's vectorized Example writer vs tf.train.Example(...).SerializeToString().

Issue 12 asks whether ``bert_tf/data/record_codec.py`` pays for itself. Two figures, one run:
* encoding alone: the same pretraining instances (a corpus packed and masked once, in memory)
  serialized by the codec and by protobuf messages built per instance, then SerializeToString
  (the plain way, lists handed to the message constructors);
* the whole conversion: ``create_pretraining_data`` on the same corpus and flags, once with each
  encoder (its serializer swapped in this process, so forked workers use it too), tokenization
  included, imports excluded.
Both encoders' outputs are checked to parse to equal messages.

  python tools/benchmark.py record_codec    # pretraining_data's corpus (wiki.txt), S=128, P=20, dupe 10
"""
import os
import sys
import tempfile
import time

from absl import flags as absl_flags

from benchmarks.pretraining_data import define_corpus_flags, vocab_for


def define_flags(fv):
    f = absl_flags
    define_corpus_flags(fv)
    f.DEFINE_integer("seq_length", 128, "--max_seq_length.", flag_values=fv)
    f.DEFINE_integer("predictions", 20, "--max_predictions_per_seq.", flag_values=fv)
    f.DEFINE_integer("dupe_factor", 10, "--dupe_factor of the whole conversion.", flag_values=fv)
    f.DEFINE_integer("workers", 2, "--num_workers of the whole conversion.", flag_values=fv)
    f.DEFINE_integer("repeats", 3, "Timed repetitions of each encoder on the same instances (best one counts).",
                     flag_values=fv)


def serialize_with_protobuf(features):
    """The plain way: one tf.train.Example per instance, values handed over as Python lists."""
    import tensorflow as tf

    names = list(features)
    kinds = ["float_list" if features[name].dtype.kind == "f" else "int64_list" for name in names]
    lists = [tf.train.FloatList if kind == "float_list" else tf.train.Int64List for kind in kinds]
    columns = [features[name].reshape(len(features[name]), -1).tolist() for name in names]
    out = []
    for row in zip(*columns):
        feature = {name: tf.train.Feature(**{kind: make(value=values)})
                   for name, kind, make, values in zip(names, kinds, lists, row)}
        out.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return out


def _best_of(repeats, function, argument):
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        result = function(argument)
        best = min(best, time.perf_counter() - started)
    return best, result


def _conversion_seconds(pretraining, serializer, corpus, output, tokenizer, settings, workers):
    original = pretraining.serialize_examples
    pretraining.serialize_examples = serializer  # module global: run_task and forked workers call it
    try:
        stats = pretraining.create_pretraining_data([corpus], output, tokenizer, settings, num_workers=workers,
                                                    verbose=False)
    finally:
        pretraining.serialize_examples = original
    return stats["seconds"], stats["instances"]


def run(flags):
    import bert_tf  # noqa: F401
    import numpy as np
    import tensorflow as tf

    from bert_tf import tokenization
    from bert_tf.data import pretraining, pretraining_corpus, record_codec

    work_dir = tempfile.mkdtemp(prefix="bench_record_codec_")
    tokenizer = tokenization.HostTokenizer(vocab_for(flags, flags.corpus, work_dir))
    settings = pretraining.Settings(max_seq_length=flags.seq_length, max_predictions_per_seq=flags.predictions,
                                    dupe_factor=flags.dupe_factor)
    corpus = pretraining_corpus.read_corpus([flags.corpus], tokenizer, flags.seq_length, verbose=False)
    vocab_info = pretraining.VocabInfo.from_tokenizer(tokenizer)
    batches = [features for args in pretraining.make_tasks(corpus.num_documents, settings)
               if (features := pretraining.task_features(corpus, settings, vocab_info, *args)) is not None]
    instances = sum(len(features["input_ids"]) for features in batches)

    def encode_all(serializer):
        return [raw for features in batches for raw in serializer(features)]

    codec_seconds, ours = _best_of(flags.repeats, lambda _: encode_all(record_codec.serialize_examples), None)
    proto_seconds, theirs = _best_of(flags.repeats, lambda _: encode_all(serialize_with_protobuf), None)
    sample = np.linspace(0, instances - 1, 200).astype(int)
    if any(tf.train.Example.FromString(ours[i]) != tf.train.Example.FromString(theirs[i]) for i in sample):
        raise AssertionError("the codec and protobuf encode different messages")
    whole = {}
    for name, serializer in (("codec", record_codec.serialize_examples), ("protobuf", serialize_with_protobuf)):
        whole[name] = _conversion_seconds(pretraining, serializer, flags.corpus,
                                          os.path.join(work_dir, f"{name}.tfrecord"), tokenizer, settings,
                                          flags.workers)
    encode_ratio = proto_seconds / codec_seconds
    whole_ratio = whole["protobuf"][0] / whole["codec"][0]
    print(f"corpus: {flags.corpus}, vocab {tokenizer.vocab_size} pieces, seq {flags.seq_length}, predictions "
          f"{flags.predictions}, dupe_factor {flags.dupe_factor}, workers {flags.workers}, cpus {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"encoding {instances} instances (best of {flags.repeats}): codec {codec_seconds:.3f} s "
          f"({instances / codec_seconds:,.0f}/s), protobuf SerializeToString {proto_seconds:.3f} s "
          f"({instances / proto_seconds:,.0f}/s): {encode_ratio:.1f}x")
    print(f"whole conversion ({whole['codec'][1]} instances, tokenization included): codec {whole['codec'][0]:.2f} s, "
          f"protobuf {whole['protobuf'][0]:.2f} s: {whole_ratio:.2f}x")
    argv = " ".join(a for a in sys.argv[1:] if a.startswith("--"))
    print(f"reproduce: python tools/benchmark.py record_codec {argv}".rstrip())
    return {"instances": instances, "codec_seconds": codec_seconds, "protobuf_seconds": proto_seconds,
            "encode_ratio": encode_ratio, "whole_seconds": whole, "whole_ratio": whole_ratio}
