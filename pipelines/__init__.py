"""flr's application layer: the ``flr`` command and end-to-end workflows (depends on :mod:`flr`)."""
