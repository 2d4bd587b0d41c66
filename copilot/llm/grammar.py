"""A JSON Schema as a GBNF grammar, for servers that constrain output with ``grammar``.

llama.cpp's server (and others built on it) accept a grammar in GBNF, its BNF dialect, where
they do not accept a ``response_format``. The subset of JSON Schema the copilot's skills use
is translated exactly: objects with properties (required ones always, in order, then the
optional ones), arrays, strings, numbers (scores from 0 or -1 to 1 bounded), integers,
booleans, null, ``enum``, ``const`` and ``anyOf``/``oneOf``. Anything else (``$ref``,
``allOf``, patterns, other bounds) becomes "any JSON value" of the right kind: the answer
is still validated against the full schema afterwards, so a looser grammar costs at most
the one repair request, never a wrong answer.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 12  # deeper schemas fall back to "any JSON value"

# At most one space between tokens: on a CPU every token of indentation costs time.
_BASE = r"""ws ::= " "?
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} ) )* "\"" ws
number ::= "-"? ( [0-9] | [1-9] [0-9]{0,15} ) ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )? ws
integer ::= "-"? ( [0-9] | [1-9] [0-9]{0,15} ) ws
boolean ::= ( "true" | "false" ) ws
null ::= "null" ws
value ::= object | array | string | number | boolean | null
object ::= "{" ws ( string ":" ws value ( "," ws string ":" ws value )* )? "}" ws
array ::= "[" ws ( value ( "," ws value )* )? "]" ws"""
_SCALARS = {"string", "number", "integer", "boolean", "null", "object", "array"}


def gbnf_for(schema: dict[str, Any]) -> str:
    """The grammar whose ``root`` accepts JSON values of ``schema`` (or a superset)."""
    rules: list[str] = []
    root = _Builder(rules).rule(schema, 0)
    return "\n".join([f"root ::= ws {root}", *rules, _BASE]) + "\n"


def literal(value: Any) -> str:
    """A JSON value as a GBNF string literal."""
    text = json.dumps(value, ensure_ascii=False)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Builder:
    def __init__(self, rules: list[str]) -> None:
        self.rules = rules

    def add(self, body: str) -> str:
        name = f"r{len(self.rules)}"
        self.rules.append(f"{name} ::= {body}")
        return name

    def rule(self, schema: Any, depth: int) -> str:
        """The name of a rule (new or built in) for ``schema``."""
        if not isinstance(schema, dict) or depth > MAX_DEPTH:
            return "value"
        if "const" in schema:
            return self.add(f"{literal(schema['const'])} ws")
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            options = " | ".join(literal(v) for v in schema["enum"])
            return self.add(f"( {options} ) ws")
        choices = schema.get("anyOf") or schema.get("oneOf")
        if isinstance(choices, list) and choices:
            return self.add(" | ".join(self.rule(c, depth + 1) for c in choices))
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k in _SCALARS]
            if not kinds:
                return "value"
            return self.add(" | ".join(self.rule({**schema, "type": k}, depth) for k in kinds))
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else None
        if kind == "object":
            return self.object(schema, depth)
        if kind == "number" and schema.get("maximum") == 1 and schema.get("minimum") in (0, -1):
            # Scores and confidences: bounded in the grammar, as small models write "10".
            sign = '"-"? ' if schema["minimum"] == -1 else ""
            return self.add(f'{sign}( "0" ( "." [0-9]{{1,6}} )? | "1" ( ".0" )? ) ws')
        if kind == "array":
            item = self.rule(schema.get("items"), depth + 1) if "items" in schema else "value"
            return self.add(f'"[" ws ( {item} ( "," ws {item} )* )? "]" ws')
        return kind if kind in _SCALARS else "value"

    def object(self, schema: dict[str, Any], depth: int) -> str:
        properties = schema.get("properties")
        if not isinstance(properties, dict) or not properties:
            return "object"
        required = [n for n in schema.get("required") or [] if n in properties]
        optional = [n for n in properties if n not in required]

        def pair(name: str) -> str:
            return f'{literal(name)} ws ":" ws {self.rule(properties[name], depth + 1)}'

        firsts = [pair(n) for n in required] or [pair(optional.pop(0))]
        body = ' "," ws '.join(firsts)
        body += "".join(f' ( "," ws {pair(n)} )?' for n in optional)
        if not required:  # every property optional: the object may be empty
            body = f"( {body} )?"
        return self.add(f'"{{" ws {body} "}}" ws')
