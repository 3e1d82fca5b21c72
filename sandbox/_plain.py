"""Strict plain-data serialisation between the untrusted job and the trusted side.

Why a format of our own: the job process shares its interpreter with the solution, so the
encoder must not go through anything the solution can patch at class level (``json``'s
``JSONEncoder.iterencode`` was one such hole) and must refuse every object whose type is not
*exactly* one of the plain builtins (None, bool, int, float, complex, str, bytes, list, tuple,
dict, set, frozenset).  A subclass, an "AlwaysEqual" object or anything with a custom
``__eq__`` is an error, never a pass: only plain data crosses the pipe, and the trusted side
compares it with its own, unpatched interpreter.

Encoding (JSON text, tagged so that types survive): ``null``/``true``/``false``, ints within
64 bits and finite floats as JSON numbers, strings as ASCII JSON strings, lists as arrays and
everything else as a one-key object: ``{"t": [...]}`` tuple, ``{"s": [...]}`` set,
``{"S": [...]}`` frozenset, ``{"d": [[k, v], ...]}`` dict (any plain keys, insertion order),
``{"b": hex}`` bytes, ``{"I": hex}`` big int, ``{"f": "nan"|"inf"|"-inf"}``,
``{"c": [re, im]}`` complex.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 100
_BIG = 1 << 63

# C implementations bound once: the solution cannot redirect these through module or class
# attributes (they are builtins, not Python functions with a patchable ``__code__``).
_esc = json.encoder.encode_basestring_ascii
_int_repr = int.__repr__
_int_format = int.__format__
_float_repr = float.__repr__
_bytes_hex = bytes.hex
_type_name = type.__dict__["__name__"].__get__


class PlainError(TypeError):
    """A value that is not plain data (or too deep / too large) reached the serialiser."""


def type_name(obj: Any) -> str:
    """The name of ``type(obj)`` without running a metaclass's code."""
    return str(_type_name(type(obj)))


def encode(obj: Any, limit: int = 8 << 20) -> str:
    """Serialise plain data to tagged JSON text; raise :class:`PlainError` for anything else.

    ``limit`` bounds the output in characters, so a huge or self-referencing value is an
    error instead of exhausting the job's memory.
    """
    out: list[str] = []
    size = [0]

    def put(s: str) -> None:
        size[0] += len(s)
        if size[0] > limit:
            raise PlainError(f"value too large to report (over {limit} characters)")
        out.append(s)

    def enc(x: Any, depth: int, _type: Any = type) -> None:  # noqa: C901 - one flat switch
        if depth > MAX_DEPTH:
            raise PlainError(f"value nested deeper than {MAX_DEPTH} levels")
        t = _type(x)
        if x is None:
            put("null")
        elif t is bool:
            put("true" if x else "false")
        elif t is int:
            put(_int_repr(x) if -_BIG < x < _BIG else '{"I":"' + _int_format(x, "x") + '"}')
        elif t is float:
            if x != x:
                put('{"f":"nan"}')
            elif x in (math.inf, -math.inf):
                put('{"f":"inf"}' if x > 0 else '{"f":"-inf"}')
            else:
                put(_float_repr(x))
        elif t is str:
            put(_esc(x))
        elif t is list:
            put("[")
            for i, y in enumerate(x):
                if i:
                    put(",")
                enc(y, depth + 1)
            put("]")
        elif t is tuple or t is set or t is frozenset:
            put('{"t":[' if t is tuple else '{"s":[' if t is set else '{"S":[')
            for i, y in enumerate(tuple(x)):
                if i:
                    put(",")
                enc(y, depth + 1)
            put("]}")
        elif t is dict:
            put('{"d":[')
            for i, (k, v) in enumerate(tuple(x.items())):
                put(",[" if i else "[")
                enc(k, depth + 1)
                put(",")
                enc(v, depth + 1)
                put("]")
            put("]}")
        elif t is bytes:
            put('{"b":"' + _bytes_hex(x) + '"}')
        elif t is complex:
            put('{"c":[')
            enc(x.real, depth + 1)
            put(",")
            enc(x.imag, depth + 1)
            put("]}")
        else:
            raise PlainError(f"unsupported type {_type_name(t)} (only plain data: None, bool, "
                             "int, float, complex, str, bytes, list, tuple, dict, set)")

    enc(obj, 0)
    return "".join(out)


def decode(data: Any, depth: int = 0) -> Any:
    """Turn tagged JSON data (already parsed by ``json.loads``) back into Python values.

    Runs on the trusted side on bytes the job wrote, so every shape is checked: malformed
    input raises ``ValueError``.
    """
    if depth > MAX_DEPTH + 2:
        raise ValueError("value nested too deeply")
    t = type(data)
    if data is None or t in (bool, int, float, str):
        return data
    if t is list:
        return [decode(x, depth + 1) for x in data]
    if t is not dict or len(data) != 1:
        raise ValueError("malformed value")
    [(tag, v)] = data.items()
    if tag in ("t", "s", "S") and type(v) is list:
        items = [decode(x, depth + 1) for x in v]
        return tuple(items) if tag == "t" else set(items) if tag == "s" else frozenset(items)
    if tag == "d" and type(v) is list:
        out = {}
        for pair in v:
            if type(pair) is not list or len(pair) != 2:
                raise ValueError("malformed dict item")
            out[decode(pair[0], depth + 1)] = decode(pair[1], depth + 1)
        return out
    if tag == "b" and type(v) is str:
        return bytes.fromhex(v)
    if tag == "I" and type(v) is str:
        return int(v, 16)
    if tag == "f" and v in ("nan", "inf", "-inf"):
        return float(v)
    if tag == "c" and type(v) is list and len(v) == 2:
        re_, im = (decode(x, depth + 1) for x in v)
        if type(re_) is not float or type(im) is not float:
            raise ValueError("malformed complex")
        return complex(re_, im)
    raise ValueError(f"malformed value tag {tag!r}")


def to_plain(obj: Any, depth: int = 0) -> Any:
    """Convert a decoded value to JSON data for comparison with JSON expected outputs.

    Tuples become lists and sets become sorted lists, because expected outputs arrive as JSON;
    dict keys become strings; NaN/inf keep a tagged form.  Anything not plain is a TypeError.
    """
    if depth > MAX_DEPTH:
        raise TypeError("return value nested too deeply")
    t = type(obj)
    if obj is None or t in (bool, int, str):
        return obj
    if t is float:
        if math.isnan(obj) or math.isinf(obj):
            return {"__float__": repr(obj)}
        return obj
    if t in (list, tuple):
        return [to_plain(x, depth + 1) for x in obj]
    if t in (set, frozenset):
        items = [to_plain(x, depth + 1) for x in obj]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=repr)
    if t is dict:
        return {str(k) if type(k) is not str else k: to_plain(v, depth + 1)
                for k, v in obj.items()}
    if t is bytes:
        return obj.decode("utf-8", "replace")
    raise TypeError(f"unsupported return type {t.__name__}")
