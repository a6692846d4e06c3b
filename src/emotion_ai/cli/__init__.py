"""The command line: one module per command group (`pipeline`: run and KFP; `steps`: single steps;
`tune`; `tracking`: models, ui, tracking-server; `serving`: serve, promote, rollback, label;
`watch`;
`data`), mounted in `app`. Only the CLI prints.

May import: every library package, and the top-level `pipelines` (to run or compile the pipeline).
"""

from emotion_ai.cli.app import app
from emotion_ai.cli.state_faults import run_with_state_faults


def main() -> None:
    """The `emotion-ai` command: a fault of the state folder ends it in one line."""
    run_with_state_faults(app)


__all__ = ["app", "main"]
