"""Recording: the one step that writes a run's results to the store (DESIGN §2, step 3).

:func:`record_result` stores a :class:`~vpbench.run.execute.RunResult` (its profile also under its
profile key, so later runs of the same model config and geometry reuse it) and marks the run
complete; :func:`record_failure` marks it failed with its error on one line and the traceback in
the run folder's ``error.log``.
"""

from __future__ import annotations

import contextlib
import traceback

from vpbench.run.execute import RunResult
from vpbench.run.plan import Claim, Outcome
from vpbench.store import Store


def record_result(store: Store, claim: Claim, result: RunResult, wall_s: float) -> Outcome:
    run = claim.run
    if result.profile is not None:
        profile = {**result.profile, "profile_key": claim.profile_key}
        if claim.profile is None:
            store.save_profile(claim.profile_key, profile)
        store.update(run.run_id, profile=profile)
    store.complete(run.run_id, result.stored_metrics(), wall_s)  # metrics None: a profile-only run
    return Outcome(run.run_id, run.label, "complete", None, wall_s)


def record_failure(store: Store, claim: Claim, message: str, wall_s: float, trace: str | None = None) -> Outcome:
    """``trace``: the traceback for ``error.log`` (default: the exception being handled). A folder that cannot
    be written (full, read-only) keeps no ``error.log``: the store's one line says what happened."""
    log = claim.run_dir / "error.log"
    try:
        log.write_text(trace if trace is not None else traceback.format_exc())
    except OSError:
        with contextlib.suppress(OSError):
            if log.stat().st_size == 0:
                log.unlink()  # the empty file the failed write left
    store.fail(claim.run.run_id, message, wall_s)
    return Outcome(claim.run.run_id, claim.run.label, "failed", message, wall_s)
