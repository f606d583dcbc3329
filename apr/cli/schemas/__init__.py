"""The JSON Schemas of `apr ... --json`, shipped with the package (one file per command).

``envelope.json`` holds what every document shares (``schema``, ``command``, ``input``, ``ok``,
``exit_code``, the ``error`` object and the shared names ``output``, ``bytes``, ``sha256``,
``verdict``); ``<command>.json`` (``contracts.lint.json`` for ``apr contracts lint``) adds what
that command's success document must hold. A consumer validates a document against the file its
``schema`` value names; `validate_document` does exactly that, so the tests check the published
files themselves, not a copy.

Example:
    >>> from apr.cli.output import envelope
    >>> validate_document(envelope("card", {"output": "CARD.md", "bytes": 10}, input="m.apr"))
    >>> sorted(commands())[:3]
    ['apr', 'card', 'contracts']
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

ENVELOPE_ID = "urn:apr:schema:envelope"


def _file_name(command: str) -> str:
    return ".".join(command.split()) + ".json"


def commands() -> list[str]:
    """Every command with a published schema, as typed (``"contracts lint"``)."""
    names = (p.name for p in resources.files(__package__).iterdir() if p.name.endswith(".json"))
    return sorted(n[: -len(".json")].replace(".", " ") for n in names if n != "envelope.json")


@functools.cache
def load_schema(command: str) -> dict[str, Any]:
    """The published schema of ``command`` (``"inspect"``, ``"contracts lint"``; ``"envelope"``).

    Raises:
        KeyError: no schema is published for that command.
    """
    path = resources.files(__package__) / _file_name(command)
    if not path.is_file():
        raise KeyError(f"no JSON schema published for `apr {command}` (apr/cli/schemas/{_file_name(command)})")
    return json.loads(path.read_text(encoding="utf-8"))


def command_of(schema_name: str) -> str:
    """``"apr.contracts.lint/1"`` -> ``"contracts lint"``.

    Raises:
        ValueError: not an ``apr.<command>/1`` name.
    """
    head, slash, version = schema_name.partition("/")
    if not (head.startswith("apr.") and slash and version == "1"):
        raise ValueError(f"not an apr JSON schema name: {schema_name!r} (expected apr.<command>/1)")
    return head[len("apr."):].replace(".", " ")


def validate_document(document: dict[str, Any]) -> None:
    """Check ``document`` against the published schema its ``schema`` key names.

    Raises:
        jsonschema.ValidationError: the document does not match; KeyError: no such schema.
    """
    import jsonschema
    from referencing import Registry, Resource

    envelope = load_schema("envelope")
    registry = Registry().with_resource(ENVELOPE_ID, Resource.from_contents(envelope))
    schema = load_schema(command_of(str(document.get("schema", ""))))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator_class(schema, registry=registry).validate(document)


__all__ = ["ENVELOPE_ID", "command_of", "commands", "load_schema", "validate_document"]
