"""Reading a user's YAML file (a recipe, a weights file, a preset) into plain data, safely.

Only `yaml.safe_load`: a `!!python/...` tag would run code, so it is refused, not honoured. Every
way a file can be unreadable (not UTF-8, a syntax error, a forbidden tag) becomes one ValueError
whose message is one line naming the file and where it went wrong, which the command line prints
as is; the caller validates the data's shape with pydantic.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


def load_yaml_file(path: str | Path, what: str) -> Any:
    """The data in the YAML file at `path` (None for an empty file); `what` names it in errors
    ("recipe", "weights file")."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise ValueError(f"{what} {path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})") from None
    except OSError as e:
        raise ValueError(f"{what} {path}: cannot be read ({e.strerror or type(e).__name__})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(f"{what} {path}: {_describe(e)}") from None


def validate_file_data(model: type[Model], data: Any, path: str | Path, what: str) -> Model:
    """`model.model_validate(data)`, with pydantic's multi-line report turned into one ValueError
    line naming the file and every offending field (`weights.web: ...; by: ...`)."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ValueError(f"{what} {path}: {field_errors(e)}") from None


def field_errors(error: ValidationError, *, top_level: str = "", strip_value_error: bool = True) -> str:
    """Every error of a pydantic ValidationError on one line, each naming its field and the value
    given: `weights.web: Input should be a valid number (got 'lots'); by: ...` (pydantic's own first
    line, "1 validation error for UserTarget", names no field). `top_level` names an error of the
    object as a whole (a model validator's; none by default); `strip_value_error` drops pydantic's
    "Value error, " before a validator's own message."""
    parts = []
    for err in error.errors():
        field = ".".join(map(str, err["loc"])) or top_level
        where = f"{field}: " if err["loc"] or top_level else ""
        msg = err["msg"].removeprefix("Value error, ") if strip_value_error else err["msg"]
        got = f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], dict) else ""
        parts.append(where + msg + got)
    return "; ".join(parts)


def _describe(error: yaml.YAMLError) -> str:
    """One line: what is wrong and where (YAML's own message spans several lines)."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    if isinstance(error, yaml.constructor.ConstructorError) and "tag" in (problem or ""):
        return f"unsupported YAML tag{where} ({problem}; only plain YAML is read, never Python objects)"
    return f"not valid YAML{where}: {problem}"
