"""`train`: the end-to-end chain users run, `kedro run --pipeline=train`."""
