"""Schemathesis hooks: the rules of Rivulet's APIs that JSON Schema cannot state.

Every other constraint is in the served OpenAPI documents, so schemathesis's
positive_data_acceptance check ("no schema-valid request is refused") holds for them. These
are the exceptions, each refused by the server with a 400 that says why; generated requests
that break them are dropped instead of being counted as schema-valid:

- POST /bulk: `time_range.start` after `time_range.end` (a comparison of two fields);
- POST /bulk: filter strings are regular expressions in Rust's syntax, whose validity no
  JSON Schema format describes (ECMA-262's `regex` format differs): generated strings keep to
  characters that are literal in it, so each compiles.
"""

from datetime import datetime

import schemathesis

REGEX_SYNTAX = set("()[]{}\\*+?|")


def _instant(text):
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _literal_regexes(selector):
    if not isinstance(selector, dict):
        return True
    for key in ("namespace", "workload", "containers"):
        values = selector.get(key)
        if isinstance(values, list):
            for value in values:
                if isinstance(value, str) and REGEX_SYNTAX & set(value):
                    return False
    return True


@schemathesis.hook("filter_body").apply_to(method="POST", path="/bulk")
def filter_body(context, body):
    if not isinstance(body, dict):
        return True
    time_range = body.get("time_range")
    if isinstance(time_range, dict):
        start, end = time_range.get("start"), time_range.get("end")
        if isinstance(start, str) and isinstance(end, str):
            start, end = _instant(start), _instant(end)
            if start is not None and end is not None and start > end:
                return False
    selection = body.get("filter")
    if isinstance(selection, dict):
        if not (_literal_regexes(selection.get("include")) and _literal_regexes(selection.get("exclude"))):
            return False
    return True
