"""Finding, probing and splitting raw talking-face clips (no Kedro here; the `ingest` pipeline wires it)."""
