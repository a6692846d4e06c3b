"""The command line: one module per command group (`pipeline`: run and KFP; `steps`: single steps;
`tune`; `tracking`: models, ui, tracking-server; `serving`: serve, promote, rollback, label;
`watch`;
`data`), mounted in `app`. Only the CLI prints.

May import: every library package, and the top-level `pipelines` (to run or compile the pipeline).
"""

from emotion_ai.cli.app import app

__all__ = ["app"]
