"""Jobs: a clone described in a TOML file, for scheduled runs.

Takes in a job file (:func:`load_job`, every key checked with its line); gives out a
:class:`Plan` of what a run would do (:func:`plan_job`, read-only) and runs it
(:func:`run_job`: :func:`hma_db.clone` plus a cached model and a report file).
"""

from hma_db.jobs.file import Job, load_job
from hma_db.jobs.plan import Plan, format_plan, plan_job
from hma_db.jobs.run import JobResult, run_job

__all__ = [
    "Job",
    "JobResult",
    "Plan",
    "format_plan",
    "load_job",
    "plan_job",
    "run_job",
]
