"""Every command's --help reads whole on an 80-column terminal: no option name cut short."""

import json
import os
import subprocess
import sys

HELP_OF_EVERY_COMMAND = """
import json, click, typer
from emotion_ai.cli import app

def walk(command, path):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk(sub, [*path, name])

root = typer.main.get_command(app)
pages = {}
for path, command in walk(root, ["emotion-ai"]):
    with click.Context(command, info_name=" ".join(path)) as context:
        names = [o for p in command.params for o in (*p.opts, *p.secondary_opts) if o[0] == "-"]
        pages[" ".join(path)] = {"help": command.get_help(context), "names": names}
print(json.dumps(pages))
"""


def test_help_fits_80_columns_and_names_every_option_whole():
    result = subprocess.run(
        [sys.executable, "-c", HELP_OF_EVERY_COMMAND],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
        check=True,
    )
    pages = json.loads(result.stdout)
    assert {"emotion-ai run", "emotion-ai serve", "emotion-ai step train-emotion"} <= set(pages)
    for command, page in pages.items():
        lines = page["help"].splitlines()
        assert max(len(line) for line in lines) <= 80, command
        words = set(page["help"].replace(",", " ").replace("/", " ").split())
        assert not [name for name in page["names"] if name not in words], command
        assert "…" not in page["help"], command
