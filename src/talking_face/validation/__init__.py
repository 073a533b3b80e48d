"""Data validation with Great Expectations: the manifest suite, and a generic per-row table validator."""
