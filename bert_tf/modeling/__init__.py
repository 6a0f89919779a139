"""Models: TFBertModel's main layer plus task heads, and the one checkpoint loader."""
