"""`python -m emotion_ai` = the `emotion-ai` command."""

from emotion_ai.cli import main

main()
