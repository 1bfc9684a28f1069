"""Running responses: `fast_path` (urgent steps at once, the flow run beside them, where it
runs set by a `run_mode.RunMode`), `starter` (`ResponseStarter`: the intake's hook that plans
and starts a response), `responder` (the `firelane respond` process) and `wake` (the nudge
from intake to responder). Submodules are imported where used."""

__all__: list[str] = []
