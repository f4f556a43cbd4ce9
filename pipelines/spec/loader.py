"""Load a spec from YAML with errors that name the YAML path, the line, and a fix.

demo.yaml:14: columns.email.kind: unknown 'hsah'; did you mean 'hash'?
"""

from __future__ import annotations

import difflib
import hashlib
import json
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from pipelines.desensitize.operator import OPERATORS
from pipelines.errors import SpecError
from pipelines.spec import dp, kanon, quality, schedule, tables
from pipelines.spec.models import PipelineSpec, reference_problems


def _all_field_names() -> set[str]:
    """Every field name of every spec model (for "did you mean" suggestions)."""
    names: set[str] = set(PipelineSpec.model_fields)
    models = [*OPERATORS]
    for module in (dp, kanon, quality, schedule, tables):
        models += [o for o in vars(module).values() if isinstance(o, type)]
    for obj in models:
        if issubclass(obj, BaseModel):
            names.update(obj.model_fields)
    return names


_FIELD_NAMES = _all_field_names()


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The spec models an annotation can hold (through unions, lists and dicts)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += _models_in(arg)
    return found


def _fields_at(loc: list[str]) -> set[str]:
    """The field names the model(s) at ``loc`` (a key's parent path) accept.

    Returns:
        Their names, or every spec field name when the path cannot be followed.
    """
    models: list[type[BaseModel]] = [PipelineSpec]
    for part in loc:
        following = [m for m in models if part in m.model_fields]
        if following:  # a field: the models its annotation holds
            models = [x for m in following for x in _models_in(m.model_fields[part].annotation)]
        # else a dict key or list index: the value models stay those already found
        if not models:
            return _FIELD_NAMES
    return {name for m in models for name in m.model_fields} or _FIELD_NAMES


def _line_map(text: str) -> dict[tuple[str, ...], int]:
    """Map each YAML path (tuple of keys) to its 1-based line number."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, str(key.value))
                lines[child] = key.start_mark.line + 1
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, str(i)))

    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else ""


def _clean_loc(loc: tuple[Any, ...], data: Any) -> list[str]:
    """Drop the tags pydantic inserts into locations of unions.

    A tagged union adds its tag (``kind``, ``method``) inside a mapping; a plain union
    (``float | str``) adds the member's type name below a scalar or a list.
    """
    out: list[str] = []
    node: Any = data
    for part in loc:
        if isinstance(node, dict) and part not in node and part in (
            node.get("kind"), node.get("method")
        ):
            continue  # a union tag, not a key of the document
        if isinstance(part, str) and node is not None and not isinstance(node, dict):
            continue  # a union member's type name below a scalar or a list
        out.append(str(part))
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return out


def _expected(ctx: dict[str, Any], key: str) -> list[str]:
    raw = str(ctx.get(key, ""))
    return [t.strip().strip("'\"") for t in raw.replace(" or ", ",").split(",") if t.strip()]


def _describe(err: dict[str, Any], data: Any) -> tuple[list[str], str]:
    loc = _clean_loc(err["loc"], data)
    kind, ctx = err["type"], err.get("ctx", {})
    if kind == "union_tag_invalid":
        field = ctx.get("discriminator", "'kind'").strip("'")
        options = _expected(ctx, "expected_tags")
        msg = f"unknown '{ctx.get('tag')}'{_suggest(ctx.get('tag'), options)}"
        return [*loc, field], msg + f" (one of: {', '.join(options)})"
    if kind == "union_tag_not_found":
        field = ctx.get("discriminator", "'kind'").strip("'")
        return [*loc, field], "missing; every column needs a 'kind'"
    if kind == "extra_forbidden":
        return loc, f"unknown field{_suggest(loc[-1], _fields_at(loc[:-1]))}"
    if kind == "literal_error":
        options = _expected(ctx, "expected")
        return loc, f"unknown '{err.get('input')}'{_suggest(err.get('input'), options)} " + (
            f"(one of: {', '.join(options)})"
        )
    if kind == "missing":
        return loc, "required field is missing"
    msg = err["msg"].removeprefix("Value error, ")
    return loc, msg


def spec_from_dict(data: Any, source: str = "<spec>", text: str | None = None) -> PipelineSpec:
    """Validate a parsed document; raise :class:`SpecError` listing every problem.

    Args:
        data: The parsed YAML document.
        source: How messages name the document (its path).
        text: The YAML text, to give problems a line number; None for no line numbers.

    Returns:
        The validated spec.

    Raises:
        SpecError: The document is not a mapping, fails the model's validation, or has
            cross-references that do not resolve (every problem with its location).
    """
    lines = _line_map(text) if text is not None else {}
    # Cross-field problems name dotted paths; a column name may hold a dot itself.
    dotted = {".".join(k): n for k, n in lines.items()}

    def where(path: list[str]) -> str:
        for n in range(len(path), -1, -1):
            if tuple(path[:n]) in lines:
                return f"{source}:{lines[tuple(path[:n])]}"
        return source

    def where_dotted(path: str) -> str:
        while path:
            if path in dotted:
                return f"{source}:{dotted[path]}"
            path = path.rpartition(".")[0]
        return source

    if not isinstance(data, dict):
        raise SpecError(f"{source}: the spec must be a YAML mapping at the top level")
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        found: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        for err in exc.errors():
            path, msg = _describe(err, data)
            found.setdefault(tuple(path), []).append((err["type"], msg))
        problems = []
        for path, errs in found.items():
            # A value no member of a union accepts: its one real problem is the finite
            # check where it applies, else every member's complaint.
            finite = [m for t, m in errs if t == "finite_number"]
            msg = finite[0] if finite else "; or ".join(dict.fromkeys(m for _, m in errs))
            problems.append(f"{where(list(path))}: {'.'.join(path) or '<top>'}: {msg}")
        raise SpecError(f"{source}: invalid spec\n  " + "\n  ".join(problems)) from None
    refs = reference_problems(spec)
    if refs:
        lines_ = [f"{where_dotted(p)}: {p}: {m}" for p, m in refs]
        raise SpecError(f"{source}: invalid spec\n  " + "\n  ".join(lines_))
    return spec


def load_spec(path: str | Path) -> PipelineSpec:
    """Read and validate a YAML spec file.

    Args:
        path: The spec file (UTF-8 YAML).

    Returns:
        The validated spec.

    Raises:
        SpecError: The file cannot be read, is not valid YAML, or is not a valid spec.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{p}: cannot read spec ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{p}: not valid YAML: {exc}") from None
    return spec_from_dict(data, source=str(p), text=text)


def spec_hash(spec: PipelineSpec) -> str:
    """SHA-256 of the canonical JSON of the validated spec (defaults included).

    Args:
        spec: The validated spec.

    Returns:
        64 lower-case hex characters; the same for specs that differ only in formatting,
        key order or spelled-out defaults.
    """
    canonical = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def json_schema() -> dict[str, Any]:
    """JSON Schema of the spec format, for editors.

    Returns:
        The JSON Schema of :class:`~pipelines.spec.models.PipelineSpec`, as a dict.
    """
    return PipelineSpec.model_json_schema()
