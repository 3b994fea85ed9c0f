"""Load and validate the config file; every error names file, line and field."""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ivr.config.references import find_reference_problems
from ivr.config.safe_text import is_secret_field
from ivr.config.schema import HotlineConfig
from ivr.config.yaml_lines import FieldPath, YamlSyntaxError, load_with_lines, nearest_line

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConfigProblem:
    file: Path
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """The config is unusable; ``problems`` lists each precise error."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def format_field(path: FieldPath) -> str:
    """``("hotlines", 0, "menus", "main")`` → ``hotlines[0].menus.main``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def load_config(path: Path | str, text: str | None = None) -> HotlineConfig:
    """Read, validate and cross-check ``path``; raises :class:`ConfigError`.

    With ``text``, that text is checked as if it were the file's content (an
    edit not yet saved): errors name ``path`` and the text's lines."""
    path = Path(path)
    try:
        data, lines = load_with_lines(path, text)
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(path, None, "", "file not found")]) from None
    except YamlSyntaxError as exc:
        raise ConfigError([ConfigProblem(path, exc.line, "", exc.message)]) from exc
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem(path, 1, "", "the file must hold a mapping")])

    def problem(where: FieldPath, message: str) -> ConfigProblem:
        return ConfigProblem(path, nearest_line(lines, where), format_field(where), message)

    try:
        config = HotlineConfig.model_validate({**data, "source": path.resolve()})
    except ValidationError as exc:
        raise ConfigError(
            [problem(where, message) for where, message in _explain(exc, data)]
        ) from None
    reference_problems = find_reference_problems(config)
    if reference_problems:
        raise ConfigError([problem(where, message) for where, message in reference_problems])
    return config


def _explain(exc: ValidationError, data: Any) -> list[tuple[FieldPath, str]]:
    """Turn pydantic's errors into one message per wrong field.

    A misspelt key shows up twice in pydantic (an unknown key and a missing
    one); we fold the pair into a single "did you mean" message.
    """
    errors = exc.errors(include_url=False)
    missing = {tuple(e["loc"][:-1]): str(e["loc"][-1]) for e in errors if e["type"] == "missing"}
    folded: set[FieldPath] = set()
    explained: list[tuple[FieldPath, str]] = []
    for error in errors:
        where: FieldPath = tuple(_strip_union_tags(error["loc"]))
        kind = error["type"]
        if kind == "extra_forbidden":
            parent, unknown = where[:-1], str(where[-1])
            allowed = _allowed_fields(parent, data)
            guess = missing.get(parent) or _closest(unknown, allowed)
            if missing.get(parent):
                folded.add((*parent, missing[parent]))
            message = f"unknown field {unknown!r}"
            if guess:
                message += f" (did you mean {guess!r}?)"
            explained.append((where, message))
        elif kind == "missing":
            continue  # reported below unless folded into a "did you mean"
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            shown = repr(error.get("input"))
            # A secret is never repeated: the error goes to the console and the audit log.
            hidden = kind in _NO_INPUT_SHOWN or is_secret_field(where)
            if "input" in error and not hidden and shown not in message:
                message += f" (got {shown})"
            explained.append((where, message))
    for error in errors:
        where = tuple(_strip_union_tags(error["loc"]))
        if error["type"] == "missing" and where not in folded:
            explained.append((where, "required field is missing"))
    return explained


_NO_INPUT_SHOWN = ("model_type", "dict_type", "list_type")


def _strip_union_tags(loc: tuple[Any, ...]) -> list[str | int]:
    # pydantic adds validator names such as "function-before[...]" to locations.
    return [part for part in loc if not (isinstance(part, str) and "[" in part)]


def _allowed_fields(parent: FieldPath, data: Any) -> list[str]:
    model: type[BaseModel] | None = HotlineConfig
    for part in parent:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        model = _model_inside(field.annotation)
    return list(model.model_fields) if model is not None else []


def _model_inside(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_inside(arg)
        if found is not None:
            return found
    return None


def _closest(word: str, candidates: list[str]) -> str | None:
    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return matches[0] if matches else None
