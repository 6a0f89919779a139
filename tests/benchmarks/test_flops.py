"""FLOP counts against hand counts for the tiny preset (L=2, H=128, I=512, vocab 30522)."""
import math

import numpy as np
import pytest

from bert_tf import config as config_lib
from benchmarks import flops


@pytest.fixture(scope="module")
def tiny():
    return config_lib.load_bert_config("tiny")


def test_encoder_and_heads_by_hand(tiny):
    # One layer at S=8: projections 8*8*128^2 = 1,048,576; attention 4*64*128 = 32,768;
    # feed-forward 4*8*128*512 = 2,097,152; sum 3,178,496, two layers 6,356,992.
    assert flops.forward_flops(tiny, 8, head="encoder") == 6_356_992
    # Pooler 2*128*128 = 32,768 plus dense to 2 labels 2*128*2 = 512.
    assert flops.forward_flops(tiny, 8, head="classification", num_labels=2) == 6_356_992 + 33_280
    # Dense to 12 tags at 8 positions: 2*8*128*12 = 24,576.
    assert flops.forward_flops(tiny, 8, head="tagging", num_labels=12) == 6_356_992 + 24_576
    # 3 masked positions: 3*(2*128^2 + 2*128*30522) = 23,539,200; pooler 32,768; NSP 512.
    assert flops.forward_flops(tiny, 8, head="pretraining", predictions=3) == 6_356_992 + 23_539_200 + 33_280


def test_attention_grows_with_the_square_of_the_length(tiny):
    # Doubling S doubles every term but attention's, which quadruples: the difference is 2 layers *
    # 4*S^2*H more at S=16 than twice S=8: 2 * (4*256*128 - 2*4*64*128) = 131,072.
    doubled = flops.forward_flops(tiny, 16, head="encoder") - 2 * flops.forward_flops(tiny, 8, head="encoder")
    assert doubled == 131_072


def test_training_is_three_forward_passes_summed_over_sequences(tiny):
    one = flops.forward_flops(tiny, 8, num_labels=1)
    other = flops.forward_flops(tiny, 32, num_labels=1)
    assert flops.training_flops(tiny, [8, 32, 8], num_labels=1) == 3 * (2 * one + other)


def test_padded_lengths_take_the_bucket_bound():
    np.testing.assert_array_equal(flops.padded_lengths([1, 16, 17, 64, 90], [16, 32, 64]), [16, 16, 32, 64, 64])
    np.testing.assert_array_equal(flops.padded_lengths([3, 40], [64]), [64, 64])


def test_matmul_peak_and_share():
    peak = flops.matmul_peak(size=256, repeats=2)
    assert math.isfinite(peak) and peak > 1e8  # any CPU of this decade multiplies faster than 0.1 GFLOP/s
    achieved, share = flops.utilisation(4e9, 2.0, 8e9)
    assert (achieved, share) == (2e9, 0.25)
    assert flops.describe(4e9, 2.0, 8e9) == "model 2.0 GFLOP/s = 25.0% of the 8.0 GFLOP/s float32 matmul peak"


def test_unknown_head_is_refused(tiny):
    with pytest.raises(ValueError, match="head 'mlm'"):
        flops.forward_flops(tiny, 8, head="mlm")


def test_finetune_benchmark_counts_bert_tf_at_its_buckets_and_the_peers_padded():
    from types import SimpleNamespace

    from benchmarks import finetune
    from bert_tf.modeling import checkpoints

    config = checkpoints.load_checkpoint_config(finetune._minilm())
    per_example = finetune.flops_per_example(SimpleNamespace(max_seq_length=64), 40)
    padded = flops.training_flops(config, [64])
    assert per_example["hf_padded"] == per_example["keras_hub"] == padded
    # Rotten Tomatoes sentences are mostly under 48 pieces: buckets cut the work, never add to it.
    smallest = flops.training_flops(config, [16])
    assert smallest <= per_example["bert_tf"] < 0.9 * padded
    # Packed, an example costs its own length: less than its bucket bound, more than the shortest.
    packed = finetune.flops_per_example(SimpleNamespace(max_seq_length=64), 40, packed=True)["bert_tf"]
    assert flops.training_flops(config, [8]) < packed < per_example["bert_tf"]
