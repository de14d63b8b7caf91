"""The fast test tier: every grader check against small Delta fixtures built without a JVM.

Run with ``make test-fast`` (``pytest -m "not spark and not notebooks"``); needs the venv only,
no Java and no jars. :mod:`fast.deltafix` builds Spark-shaped Delta tables with delta-rs.
"""
