"""Sync tests use the task and project factories of the tasks tests."""

from tests.tasks.conftest import TaskFactory, project_factory, task_factory

__all__ = ["TaskFactory", "project_factory", "task_factory"]
