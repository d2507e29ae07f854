"""Studies: a study file (`config`: grid, seeds, validation) expands into cells, cells group into
populations (`populations`), populations run through an executor (`executors`), and the runner (`runner`)
writes every result to the run's store. The classic simulations are in `simulations`; the shipped study
files are in shipped/ (`shipped`)."""

from actlab.studies.config import Cell, StudyConfig, expand, load_study
from actlab.studies.runner import RunSummary, plan_run, run_study

__all__ = ["Cell", "RunSummary", "StudyConfig", "expand", "load_study", "plan_run", "run_study"]
