"""The learner's course: notebooks (execute, build learner versions), the workflow (status, hint,
reset, catch-up), learner progress and the kit's self-check (``dev check``)."""
