"""emotion-ai: train, track, gate and serve face keypoint and emotion models.

Stage packages: `data`, `modeling`, `release`, `serving`, `monitoring`, `steps`, `cli`. Shared by
all and importing none of them: `faces` (what a face is), `settings` (every default, once) and
`storage` (atomic writes, URI schemes). The import rules are import-linter contracts in
pyproject.toml.
"""
