"""What the plugins that keep one state per task need from an online stream (Avalanche's
`split_online_stream`), where a task arrives in many small sub-experiences."""

from typing import Any

from avalanche.benchmarks.scenarios.online import OnlineCLExperience


def check_online_experience(experience: Any, method: str, task_labels: bool) -> None:
    """Raise if a piece of an online stream hides what `method` needs: where its task begins and ends,
    and, for a model that reads task labels, the task label (Avalanche's split_online_stream drops it)."""
    if not isinstance(experience, OnlineCLExperience):
        return
    if not experience.access_task_boundaries:
        raise ValueError(f"{method} on an online stream must see where each task begins and ends: split it "
                         "with split_online_stream(..., access_task_boundaries=True)")
    if task_labels and not hasattr(experience, "task_labels"):
        raise ValueError(f"{method} on an online stream needs its task labels, which split_online_stream drops: "
                         "wrap it, with_task_labels(split_online_stream(..., access_task_boundaries=True))")


def whole_experience(experience: Any) -> Any:
    """The experience a piece of an online stream was split from (it holds the task's classes), or
    `experience` itself."""
    return experience.origin_experience if isinstance(experience, OnlineCLExperience) else experience


def ends_task(experience: Any, pieces: int) -> bool:
    """Whether `experience`, the `pieces`-th piece of its task (counting from 1), is the last one.
    Avalanche 0.6 leaves `is_last_subexp` False when the task's size is a multiple of the piece size,
    so the pieces are counted against `sub_stream_length` too."""
    return experience.is_last_subexp or pieces >= experience.sub_stream_length
