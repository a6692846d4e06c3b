"""Command-line options generated from the settings classes: every field with help text (see
`emotion_ai.settings.option`) is an option named after it (`--learning-rate`), typed and defaulted
by the field, nested settings included (`TrainSettings.network.width` is `--width`). A name shared
by several classes (`seed`) is one option that sets the field in each of them.

A command declares the settings it takes as typed parameters; `takes_settings` adds their options
to its signature and hands it the built settings objects.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from dataclasses import Field, fields, is_dataclass
from typing import Annotated, Any, get_type_hints

import typer

from emotion_ai.cli.options import one_of
from emotion_ai.settings_json import settings_from_values

PANELS = {
    "SourceSettings": "Data",
    "SplitSettings": "Split",
    "ValidationSettings": "Validation",
    "TrainSettings": "Training",
    "ResNetConfig": "Network",
    "AugmentSettings": "Augmentation",
    "GateSettings": "Promotion gate",
    "ReleaseSettings": "Release",
    "ServingOptions": "Serving",
    "BatchSettings": "Batching",
    "DetectorSettings": "Face detector",
    "RequestLimits": "Request limits",
}
"""The help panel each settings class's options are listed under."""


def option_fields(cls: type) -> Iterator[tuple[Field, Any, type]]:
    """(field, type, class) of every option field of `cls`, nested settings' fields in place."""
    hints = get_type_hints(cls)
    for item in fields(cls):
        if is_dataclass(hints[item.name]):
            yield from option_fields(hints[item.name])
        elif "help" in item.metadata:
            yield item, hints[item.name], cls


def flag(item: Field) -> str:
    return "--" + item.metadata.get("flag", item.name.replace("_", "-"))


def _parameter(item: Field, hint: Any, owner: type) -> inspect.Parameter:
    choices = item.metadata.get("choices")
    name = flag(item)
    declared = typer.Option(
        f"{name}/--no-{name[2:]}" if hint is bool else name,
        help=item.metadata["help"],
        callback=one_of(choices) if choices else None,
        rich_help_panel=PANELS.get(owner.__name__, owner.__name__),
    )
    return inspect.Parameter(
        item.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=item.default,
        annotation=Annotated[hint, declared],
    )


def unique_option_fields(*classes: type) -> list[tuple[Field, Any, type]]:
    """The option fields of `classes`, one per name (the first class's field states it)."""
    unique: dict[str, tuple[Field, Any, type]] = {}
    for cls in classes:
        for item, hint, owner in option_fields(cls):
            unique.setdefault(item.name, (item, hint, owner))
    return list(unique.values())


def settings_parameters(*classes: type) -> list[inspect.Parameter]:
    """One command parameter per option name over `classes`."""
    return [_parameter(*option) for option in unique_option_fields(*classes)]


def takes_settings(command: Callable) -> Callable:
    """Gives `command` the options of each settings class it takes (a parameter annotated with a
    settings dataclass, as `training: TrainSettings`); the command receives each such parameter as
    the settings object built from them. A value the settings refuse is a usage error naming it."""
    hints = get_type_hints(command, include_extras=True)
    classes = {
        name: hint for name, hint in hints.items() if isinstance(hint, type) and is_dataclass(hint)
    }
    own = [
        p.replace(annotation=hints.get(name, p.annotation))
        for name, p in inspect.signature(command).parameters.items()
        if name not in classes
    ]
    generated = settings_parameters(*classes.values())

    @functools.wraps(command)
    def wrapper(**values: Any) -> Any:
        mine = {p.name: values[p.name] for p in own}
        try:
            built = {name: settings_from_values(cls, values) for name, cls in classes.items()}
        except ValueError as error:
            raise typer.BadParameter(str(error)) from error
        return command(**mine, **built)

    parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + generated
    wrapper.__signature__ = inspect.Signature(parameters)
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    del wrapper.__wrapped__
    return wrapper
