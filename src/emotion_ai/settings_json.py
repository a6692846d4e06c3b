"""Settings as the JSON text that carries them across a step boundary (a KFP pipeline parameter, a
component argument), read back strictly: every field must be there with a value of its type, and
nothing else may be, so a field some hop forgot is an error, never a silent default."""

from __future__ import annotations

import json
from dataclasses import asdict, fields, is_dataclass
from typing import Any, TypeVar, get_type_hints

from pydantic import TypeAdapter, ValidationError

Settings = TypeVar("Settings")


class SettingsError(ValueError):
    """Settings text that does not hold exactly the fields of its class, each of its type."""


def settings_to_json(settings: object) -> str:
    return json.dumps(asdict(settings), sort_keys=True)


def settings_from_json(cls: type[Settings], text: str) -> Settings:
    """The `cls` instance `text` holds; SettingsError names the first field that is missing,
    unknown or of the wrong type."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SettingsError(f"{cls.__name__} is not JSON: {error}") from error
    return _from_dict(cls, data, cls.__name__)


def option_names(cls: type) -> set[str]:
    """The option fields' names of `cls`, nested settings included."""
    hints = get_type_hints(cls)
    return set().union(
        *(
            option_names(hints[item.name]) if is_dataclass(hints[item.name]) else {item.name}
            for item in fields(cls)
            if is_dataclass(hints[item.name]) or "help" in item.metadata
        )
    )


def settings_from_values(
    cls: type[Settings], values: dict[str, Any], from_text: bool = False
) -> Settings:
    """`cls` with each option field named in `values` set to its value (nested settings alike),
    the others at their defaults; `from_text` converts text (`"3"`, `"true"`) to each field's type,
    naming a field whose text does not convert."""
    hints = get_type_hints(cls)
    arguments = {}
    for item in fields(cls):
        hint = hints[item.name]
        if is_dataclass(hint):
            arguments[item.name] = settings_from_values(hint, values, from_text)
        elif item.name in values and "help" in item.metadata:
            value = values[item.name]
            arguments[item.name] = _converted(hint, value, item.name) if from_text else value
    return cls(**arguments)


def _converted(hint: Any, text: str, name: str) -> Any:
    try:
        return TypeAdapter(hint).validate_python(text)
    except ValidationError as error:
        raise SettingsError(f"{name} must be {_type_name(hint)}, not {text!r}") from error


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))


def _from_dict(cls: type[Settings], data: Any, where: str) -> Settings:
    if not isinstance(data, dict):
        raise SettingsError(f"{where} must be an object of {cls.__name__}'s fields, not {data!r}")
    names = {f.name for f in fields(cls)}
    missing, unknown = sorted(names - data.keys()), sorted(data.keys() - names)
    if missing or unknown:
        raise SettingsError(
            f"{where}: "
            + "; ".join(
                part
                for part in (
                    f"missing field(s) {missing}" if missing else "",
                    f"unknown field(s) {unknown}" if unknown else "",
                )
                if part
            )
        )
    hints = get_type_hints(cls)
    return cls(**{name: _value(hints[name], data[name], f"{where}.{name}") for name in names})


def _value(hint: Any, value: Any, where: str) -> Any:
    if is_dataclass(hint):
        return _from_dict(hint, value, where)
    try:
        return TypeAdapter(hint).validate_python(value, strict=True)
    except ValidationError as error:
        raise SettingsError(f"{where}: {value!r} is not {_type_name(hint)}") from error
