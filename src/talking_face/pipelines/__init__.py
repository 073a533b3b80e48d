"""Kedro pipelines: one folder each, with thin `nodes.py` over the library and `pipeline.py` wiring."""
