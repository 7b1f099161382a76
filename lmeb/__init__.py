"""lmeb: a fast, exact harness for LMEB, the Long-horizon Memory Embedding Benchmark."""

from lmeb.tasks import Selection, Subset, Task, get_task, get_tasks, select

__version__ = "0.1.0"

__all__ = ["Selection", "Subset", "Task", "__version__", "get_task", "get_tasks", "select"]
