"""Data checks that stop a run: the error carries the check's name and the report that explains it.

The report is written before the check raises (it is an output of an earlier node), so a user reads why
in the report; the command ends with `DataCheckError.line()` and no traceback (see talking_face.cli and
talking_face.hooks). `report` names the report's catalog entry until the project hook replaces it with
the entry's file path.
"""

from __future__ import annotations


class DataCheckError(RuntimeError):
    """The data as a whole fails a check (too many clips rejected, too few to train on)."""

    def __init__(self, check: str, message: str, report: str):
        super().__init__(message)
        self.check, self.message, self.report = check, " ".join(message.split()), report

    def line(self) -> str:
        return f"data check '{self.check}' failed: {self.message}; see {self.report}"

    def __str__(self) -> str:
        return self.line()
