"""One error type for every unreadable or unwritable media file, with a one-line message."""


class MediaError(ValueError):
    """A media file cannot be read or written; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem
