"""The tracking part: the MLflow facade, the store with its spool and replay, packaging and
vetted loading of models, the runner."""
