"""The two LMEB settings and the one rule for which instruction a model gets in each."""

from __future__ import annotations

from lmeb.errors import LmebError

SETTINGS = ("wo_inst", "w_inst")  # without / with the task instruction on queries (and rerankers)


def check_setting(setting: str, what: str = "setting") -> str:
    """``setting`` if it is ``wo_inst`` or ``w_inst``, else a one-line error."""
    if setting not in SETTINGS:
        raise LmebError(f"unknown {what} {setting!r} (choose from {', '.join(SETTINGS)})")
    return setting


def setting_instruction(setting: str, instruction: str | None) -> str | None:
    """The instruction queries and rerankers get: the task's own in ``w_inst``, None in ``wo_inst``.

    None means "no instruction": encoders embed the bare query, KaLM-Reranker-V1 fills its prompt with
    its default instruction (what mteb gives it on LMEB).
    """
    return instruction if check_setting(setting) == "w_inst" else None
