"""The model of each task name, as a model directory's ``bert_tf.json`` stores it (above both
modeling/tasks.py and modeling/pretraining.py, which subclasses tasks' base)."""
from bert_tf.modeling.pretraining import BertPretrainingModel
from bert_tf.modeling.tasks import MultipleChoice, SequenceClassifier, SpanQA, TokenTagger


def build_task_model(task, config, num_labels=None):
    """The model for a task name as stored in a model directory's ``bert_tf.json``."""
    if task == "classification":
        return SequenceClassifier(config, num_labels=num_labels)
    if task == "regression":
        return SequenceClassifier(config, num_labels=1, regression=True)
    if task == "pretraining":
        return BertPretrainingModel(config)
    if task == "tagging":
        return TokenTagger(config, num_labels=num_labels)
    if task == "squad":
        return SpanQA(config)
    if task == "multiple_choice":
        return MultipleChoice(config, num_choices=num_labels)
    raise ValueError(f"unknown task {task!r}")
