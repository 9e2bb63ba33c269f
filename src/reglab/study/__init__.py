"""Studies: many runs of one data set and model, stored, summarized and reported."""

from reglab.study.compare import CompareOptions, CompareOutcome, compare_study
from reglab.study.runner import StudyResult, run_study
from reglab.study.spec import StudySpec
from reglab.study.store import RunStore
from reglab.study.strategies import BUILTIN_STRATEGIES, resolve_strategies

__all__ = [
    "BUILTIN_STRATEGIES",
    "CompareOptions",
    "CompareOutcome",
    "RunStore",
    "StudyResult",
    "StudySpec",
    "compare_study",
    "resolve_strategies",
    "run_study",
]
