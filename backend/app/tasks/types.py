"""Values the task use cases hand each other (service.py, recurring.py)."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TaskJson:
    """A task as the database rendered it: its version (the ETag) and JSON body."""

    version: int
    body: bytes
