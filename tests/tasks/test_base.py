"""The steps every task shares through bert_tf/tasks/base.py: the missing-file message, label
resolution, the head check, and the registry of stored task names."""
import pytest

from bert_tf.data.classification import Example
from bert_tf.data.multiple_choice import ChoiceExample
from bert_tf.data.tagging import Sentence
from bert_tf.errors import UserError
from bert_tf.jobs import classifier, multiple_choice, squad, tagger
from bert_tf.tasks import registry
from bert_tf.tasks.base import Split
from bert_tf.tasks.classification import ClassificationTask
from bert_tf.tasks.multiple_choice import MultipleChoiceTask
from bert_tf.tasks.squad import SquadTask
from bert_tf.tasks.tagging import TaggingTask

JOBS = [(classifier, ClassificationTask, ""), (tagger, TaggingTask, ""), (squad, SquadTask, " (or --predict_file)"),
        (multiple_choice, MultipleChoiceTask, "")]


@pytest.mark.parametrize("job, task_class, alternative", JOBS)
def test_a_missing_file_flag_is_named_with_its_switch(job, task_class, alternative, flag_values):
    task = task_class(flag_values(job.define_flags, ["--output_dir=out"]))
    with pytest.raises(UserError, match=r"^--train_file is required with --do_train$"):
        task.file("train")
    for split, switch in (("dev", "--do_eval"), ("test", "--do_predict")):
        with pytest.raises(UserError) as error:
            task.file(split)
        assert str(error.value) == f"--{split}_file is required with {switch}{alternative}"


def test_squad_reads_the_predict_file_for_dev_and_test(flag_values):
    task = SquadTask(flag_values(squad.define_flags, ["--predict_file=dev.json", "--test_file=test.json"]))
    assert (task.file("dev"), task.file("test")) == ("dev.json", "test.json")


def _split(examples, name="train"):
    return Split(name, examples, ["file"], "file")


def test_labels_come_from_the_flag_the_checkpoint_or_the_training_data(flag_values):
    sentences = _split([Sentence(["a", "b"], ["O", "B-X"]), Sentence(["c"], ["I-X"])])
    task = TaggingTask(flag_values(tagger.define_flags, ["--do_train"]))
    task.resolve_labels(None, sentences)
    assert task.labels == ["B-X", "I-X", "O"]
    task = TaggingTask(flag_values(tagger.define_flags, ["--do_train", "--labels=O,B-X"]))
    with pytest.raises(UserError, match=r"^training tags \['I-X'\] are not in --labels \['O', 'B-X'\]: add them$"):
        task.resolve_labels(None, sentences)
    # Not training: a fine-tuned checkpoint of the same task supplies them; another task's does not.
    task = TaggingTask(flag_values(tagger.define_flags, ["--do_eval"]))
    task.resolve_labels({"task": "tagging", "labels": ["O", "B-X"]}, None)
    assert task.labels == ["O", "B-X"]
    with pytest.raises(UserError, match="the tag set is unknown: pass --labels, or an --init_checkpoint fine-tuned "
                                        "by run_tagger"):
        task.resolve_labels({"task": "classification", "labels": ["0", "1"]}, None)


def test_classification_needs_two_labels_and_regression_none(flag_values):
    examples = _split([Example("a", label="1"), Example("b", label="1")])
    task = ClassificationTask(flag_values(classifier.define_flags, ["--do_train"]))
    with pytest.raises(UserError, match=r"the training data has one label \(\['1'\]\): classification needs two"):
        task.resolve_labels(None, examples)
    task = ClassificationTask(flag_values(classifier.define_flags, ["--do_train", "--task_type=regression"]))
    task.resolve_labels(None, _split([Example("a", label="0.5"), Example("b", label="2")]))
    assert task.labels is None and task.name == "regression"
    with pytest.raises(UserError, match="regression label 'high' is not a number"):
        task.resolve_labels(None, _split([Example("a", label="high")]))


def test_multiple_choice_files_and_checkpoint_share_the_number_of_choices(flag_values):
    task = MultipleChoiceTask(flag_values(multiple_choice.define_flags, ["--do_train"]))
    three = _split([ChoiceExample("c", ["a", "b", "c"], 0)])
    task.settle_head({"train": three}, {"task": "multiple_choice", "num_choices": 3})
    assert task.num_choices == 3
    with pytest.raises(UserError, match=r"disagree on the number of choices \[3, 4\]"):
        task.settle_head({"train": three}, {"task": "multiple_choice", "num_choices": 4})
    with pytest.raises(UserError, match=r"disagree on the number of choices \[2, 3\]"):
        task.settle_head({"train": three, "dev": _split([ChoiceExample("c", ["a", "b"], 1)], "dev")}, None)


def test_every_stored_task_name_has_one_task_class():
    assert set(registry.TASKS) == {"classification", "regression", "tagging", "squad", "multiple_choice",
                                   "pretraining"}
    assert registry.SERVABLE == ("classification", "regression", "tagging", "squad")
    assert registry.task_of({"task": "classification", "labels": ["0", "1"], "text_pair": True}).text_inputs == (
        "text", "text_pair")
    assert registry.task_of({"task": "squad"}).text_inputs == ("question", "context")
    with pytest.raises(UserError, match="holds a 'multiple_choice' model; export supports classification, "
                                        "regression, tagging, squad"):
        registry.servable_task({"task": "multiple_choice", "num_choices": 4}, "dir")
    with pytest.raises(ValueError, match="unknown task 'encoder'"):
        registry.task_of({"task": "encoder"})
