"""Chinese through the stages after tokenization: whole-word masking from a segmented corpus, SQuAD
answers at character offsets, and the tagger (one token per character, entity F1 as seqeval says)."""
import json
import os
import random

import numpy as np
import pytest
import seqeval.metrics
import seqeval.scheme

from bert_tf import tokenization
from bert_tf.data import pretraining, pretraining_instances, pretraining_masking, squad, tagging
from bert_tf.data.pretraining_corpus import read_corpus
from bert_tf.jobs import tagger
from bert_tf.modeling.tasks import IGNORE_LABEL
from bert_tf.training import metrics
from bert_tf.tokenization import HostTokenizer
from tests.conftest import DATA

ZH = os.path.join(DATA, "zh")


@pytest.fixture(scope="module")
def zh_vocab(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("zh") / "vocab.txt")
    tokenization.build_vocab([os.path.join(ZH, "corpus_segmented.txt"), os.path.join(ZH, "ner_train.conll")], path,
                             vocab_size=6000)
    return path


def _word_ids(ids, length, continuation, vocab):
    """Word index of each token of a packed row: [CLS]/[SEP] end words, as does a cut at the row's front."""
    columns = np.arange(len(ids))
    candidate = (columns > 0) & (columns < length) & (ids != vocab.cls_id) & (ids != vocab.sep_id)
    previous = np.concatenate([[False], candidate[:-1]])
    return np.cumsum(~(continuation & previous))


def test_pre_segmented_corpus_masks_whole_chinese_words(zh_vocab, tmp_path):
    host = HostTokenizer(zh_vocab)
    segmented = str(tmp_path / "segmented.txt")
    with open(os.path.join(ZH, "corpus_segmented.txt"), encoding="utf-8") as f:
        head = f.read().split("\n")[:600]
    with open(segmented, "w", encoding="utf-8") as f:
        f.write("\n".join(head) + "\n")
    corpus = read_corpus([segmented], host, verbose=False, pre_segmented=True)
    plain = read_corpus([segmented], host, verbose=False)
    # The spaces change no token; they only say which tokens belong together.
    np.testing.assert_array_equal(corpus.tokens, plain.tokens)
    first = host.convert_ids_to_tokens(corpus.tokens[:8])
    assert first == ["迈", "向", "充", "满", "希", "望", "的", "新"]  # "迈向 充满 希望 的 新 ..."
    assert corpus.continuation[:8].tolist() == [False, True, False, True, False, True, False, False]

    settings = pretraining.Settings(max_seq_length=64, max_predictions_per_seq=10, do_whole_word_mask=True,
                                    pre_segmented=True)
    vocab = pretraining.VocabInfo.from_tokenizer(host)
    rng, spans = random.Random(1), []
    for doc in range(20):
        pretraining_instances.document_spans(corpus, doc, settings, rng, spans)
    ids, _, lengths, _, continuation = pretraining_instances.pack(corpus, spans, settings, vocab, rng)
    masked, positions, originals, weights = pretraining_masking.mask_instances(
        ids, lengths, settings, vocab, np.random.default_rng(0), continuation)
    multi_character_words = 0
    for row in range(len(ids)):
        chosen = set(positions[row][weights[row] > 0].tolist())
        words = _word_ids(ids[row], lengths[row], continuation[row], vocab)
        for word in {int(words[p]) for p in chosen}:
            members = set(np.flatnonzero(words == word).tolist())
            assert members <= chosen, (row, word)  # a word is masked whole or not at all
            multi_character_words += len(members) > 1
        np.testing.assert_array_equal(originals[row][weights[row] > 0], ids[row][sorted(chosen)])
    assert multi_character_words > 50

    # Without segmentation every ideograph is a word: "##" marks no Chinese token, so masks are per character.
    cjk = [i for t, i in host.vocab.items() if tokenization._CJK_CHAR.fullmatch(t)]
    assert len(cjk) > 2000 and not vocab.continuation[cjk].any()


def test_pre_segmented_needs_whole_word_masking():
    from bert_tf.errors import UserError

    with pytest.raises(UserError, match="--pre_segmented only changes which tokens are masked together: add "
                                        "--do_whole_word_mask"):
        pretraining.Settings(pre_segmented=True).validate()
    with pytest.raises(UserError, match="cannot take effect with --dynamic_masking"):
        pretraining.Settings(pre_segmented=True, do_whole_word_mask=True, dynamic_masking=True).validate()


def test_chinese_squad_answers_map_to_character_offsets(zh_vocab):
    host = HostTokenizer(zh_vocab)
    examples, skipped = squad.read_squad(os.path.join(ZH, "squad_synthetic.json"), is_training=True)
    assert skipped == 0 and len(examples) == 6
    assert [(e.answer_text, e.answer_start) for e in examples[:2]] == [("江泽民", 19), ("《迈向充满希望的新世纪》", 33)]
    # Short windows: contexts of ~70 characters are cut into several, the answer inside only some.
    windows, stats = squad.convert_examples(examples, host, max_seq_length=48, doc_stride=12, max_query_length=24,
                                            is_training=True)
    assert stats["num_windows"] > len(examples) and stats["answers_outside_windows"] == 0
    answered = set()
    for window in windows:
        example = examples[window.example_index]
        if window.start_position == 0:
            continue
        first = window.start_position - window.context_start
        last = window.end_position - window.context_start
        start, end = window.piece_offsets[first][0], window.piece_offsets[last][1]
        assert example.context[start:end] == example.answer_text
        answered.add(example.qas_id)
    assert answered == {e.qas_id for e in examples}
    # Decoding logits that point at the gold pieces returns the answer text, sliced from the context.
    size = len(windows[0].input_ids)
    start_logits, end_logits = np.zeros((len(windows), size)), np.zeros((len(windows), size))
    for row, window in enumerate(windows):
        start_logits[row, window.start_position] = end_logits[row, window.end_position] = 10.0
    predictions, _, _ = squad.decode(examples, windows, start_logits, end_logits)
    assert predictions == {e.qas_id: e.answer_text for e in examples}


def _short_ner_sentences(path, limit, max_chars=40):
    blocks = [b for b in open(path, encoding="utf-8").read().split("\n\n") if b.strip()]
    chosen = [b for b in blocks if len(b.split("\n")) <= max_chars and "B-" in b][:limit]
    return "\n\n".join(chosen) + "\n"


def test_chinese_characters_are_one_token_each_and_entities_score_as_seqeval(zh_vocab):
    host = HostTokenizer(zh_vocab)
    sentences = tagging.read_conll(os.path.join(ZH, "ner_dev.conll"))[:60]
    label_list = tagging.label_list_from(sentences)
    single = 0
    for sentence, (features, kept) in zip(sentences, tagging.encode_sentences(sentences, host, 128, label_list)):
        length = int(features["input_mask"].sum())
        labelled = features["label_ids"][:length] != IGNORE_LABEL
        assert kept == len(sentence.words)
        # Tags sit on each character's first piece, in order.
        assert [label_list[i] for i in features["label_ids"][:length][labelled]] == sentence.tags
        single += length - 2 == len(sentence.words)
    assert single >= 55  # all but sentences with multi-piece Latin/digit "characters" take one piece per character
    # Entity scores: seqeval's strict IOB2 rules on predictions that break entities in the usual ways.
    gold = [s.tags for s in sentences]
    rng = random.Random(0)
    predicted = [[("I-" + t[2:] if t.startswith("B-") and rng.random() < 0.2 else
                   "O" if t != "O" and rng.random() < 0.1 else
                   "B-LOC" if t == "O" and rng.random() < 0.02 else t) for t in tags] for tags in gold]
    scores = metrics.tagging_metrics(gold, predicted, label_list)
    options = dict(mode="strict", scheme=seqeval.scheme.IOB2)
    assert scores["f1"] == pytest.approx(seqeval.metrics.f1_score(gold, predicted, **options), abs=1e-12)
    assert scores["precision"] == pytest.approx(seqeval.metrics.precision_score(gold, predicted, **options),
                                                abs=1e-12)
    assert 0.5 < scores["f1"] < 0.95
    # Lenient (conlleval) rules would count an entity opened by I- too; strict does not.
    assert seqeval.metrics.f1_score(gold, predicted) > scores["f1"]


@pytest.mark.slow
def test_tagger_on_chinese_characters_scores_entities_as_seqeval(tmp_path, zh_vocab, flag_values):
    data = tmp_path / "ner.conll"
    data.write_text(_short_ner_sentences(os.path.join(ZH, "ner_train.conll"), 48), encoding="utf-8")
    out = str(tmp_path / "run")
    argv = [f"--bert_config_file=tiny", f"--vocab_file={zh_vocab}", f"--train_file={data}", f"--dev_file={data}",
            f"--test_file={data}", f"--output_dir={out}", "--max_seq_length=48", "--train_batch_size=16",
            "--num_train_steps=60", "--learning_rate=5e-3", "--warmup_proportion=0.1", "--seed=2",
            "--do_train", "--do_eval", "--do_predict"]
    results = tagger.run(flag_values(tagger.define_flags, argv))
    sentences = [[line.split("\t") for line in block.split("\n") if line]
                 for block in open(os.path.join(out, tagger.PREDICTIONS_FILE), encoding="utf-8").read().split("\n\n")]
    sentences = [s for s in sentences if s]
    gold_blocks = [[line.split("\t") for line in b.split("\n") if line] for b in data.read_text().split("\n\n")]
    gold_blocks = [b for b in gold_blocks if b]
    # One prediction per character, in order.
    assert [[row[:2] for row in s] for s in sentences] == gold_blocks
    gold = [[row[1] for row in s] for s in sentences]
    predicted = [[row[2] for row in s] for s in sentences]
    expected = seqeval.metrics.f1_score(gold, predicted, mode="strict", scheme=seqeval.scheme.IOB2)
    evaluation = results["eval"]
    assert evaluation["tag_scheme"] == "BIO"
    assert evaluation["f1"] == pytest.approx(expected, abs=1e-12)
    assert evaluation["f1"] > 0.2  # the model found entities, so the comparison is not 0 == 0
    with open(os.path.join(out, "eval_results.json")) as f:
        assert json.load(f)["f1"] == evaluation["f1"]
