"""The Rust translator itself; see the package docstring."""
import json
import math
import re

from papermill.models import Parameter
from papermill.translators import Translator, papermill_translators

RUST_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# `let name: Type = default; // help` in the notebook's parameters cell.
DECLARATION = re.compile(
    r"^\s*let\s+(?:mut\s+)?(?P<name>[A-Za-z_]\w*)\s*:\s*(?P<type>[^=]+?)\s*=\s*(?P<default>.+?);\s*(?://\s*(?P<help>.*))?$"
)
INTEGERS = {"i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize"}
FLOATS = {"f32", "f64"}
TEXTS = {"String", "std::string::String"}
STRS = {"&str", "&'staticstr"}
PATHS = {"PathBuf", "std::path::PathBuf"}
MAPS = ("HashMap", "BTreeMap", "std::collections::HashMap", "std::collections::BTreeMap")


class ParameterTypeError(ValueError):
    """A parameter value that cannot be written as the type its `let` declares."""


def _generic(rust_type, names):
    """`Option<T>` -> `T` when the type's outer name is one of `names`."""
    for name in names:
        if rust_type.startswith(f"{name}<") and rust_type.endswith(">"):
            return rust_type[len(name) + 1 : -1]
    return None


def _split_top_level(arguments):
    """`String,Vec<u8>` -> [`String`, `Vec<u8>`]: split at commas outside angle brackets."""
    depth, parts, current = 0, [], ""
    for ch in arguments:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts


def _split_comment(line):
    """`let a: String = "http://x".into(); // help` -> (code, `help`): the first `//` outside a
    string literal starts the comment."""
    in_string, escaped = False, False
    for i, ch in enumerate(line):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif line.startswith("//", i):
            return line[:i], line[i + 2 :].strip()
    return line, ""


class RustTranslator(Translator):
    # The declared types of the parameters of the notebook being parameterized. papermill reads the
    # parameters cell through `inspect` right before it asks for the injected cell (`codify`), which
    # has no access to the notebook: this is how the injected `let`s keep the declared types.
    declared = {}

    @classmethod
    def translate_escaped_str(cls, str_val):
        """A Rust string literal; non-ASCII text stays as it is, control characters become \\u{..}."""
        escapes = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
        body = "".join(
            escapes.get(ch) or (f"\\u{{{ord(ch):x}}}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch) for ch in str_val
        )
        return '"' + body + '"'

    @classmethod
    def literal(cls, name, value, rust_type):
        """`value` written as a Rust expression of type `rust_type`, e.g. `Some("x".to_string())`."""
        t = rust_type.replace(" ", "")

        def wrong(expected):
            return ParameterTypeError(
                f"parameter {name!r} is declared as {rust_type} but got {type(value).__name__} {value!r}"
                + (f" ({expected})" if expected else "")
            )

        inner = _generic(t, ("Option", "std::option::Option"))
        if inner is not None:
            return "None" if value is None else f"Some({cls.literal(name, value, inner)})"
        if value is None:
            raise wrong("only an Option<...> parameter can be None")
        if t in INTEGERS:
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise wrong("an integer is expected")
            return str(value)
        if t in FLOATS:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise wrong("a number is expected")
            if math.isnan(value):
                return f"{t}::NAN"
            if math.isinf(value):
                return f"{t}::INFINITY" if value > 0 else f"{t}::NEG_INFINITY"
            text = repr(float(value))
            return text if ("." in text or "e" in text) else f"{text}.0"
        if t == "bool":
            if not isinstance(value, bool):
                raise wrong("true or false is expected")
            return "true" if value else "false"
        if t in TEXTS | STRS | PATHS:
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, (int, float)):
                value = repr(value)  # `-p version 1.0` means the text 1.0 for a String parameter
            if not isinstance(value, str):
                raise wrong("a text is expected")
            text = cls.translate_escaped_str(value)
            if t in TEXTS:
                return f"{text}.to_string()"
            if t in PATHS:
                return f"std::path::PathBuf::from({text})"
            return text
        element = _generic(t, ("Vec", "std::vec::Vec"))
        if (element is not None or t.startswith(MAPS)) and isinstance(value, str):
            # `-p features '["danceability", "energy"]'`: papermill's -p hands over text; a list
            # or map parameter reads it as JSON.
            try:
                value = json.loads(value)
            except ValueError as error:
                kind = "a list" if element is not None else "a mapping"
                raise wrong(f"{kind} is expected; as text, give it as JSON, e.g. [\"a\", \"b\"]: {error}") from None
        if element is not None:
            if not isinstance(value, (list, tuple)):
                raise wrong("a list is expected")
            return "vec![" + ", ".join(cls.literal(name, v, element) for v in value) + "]"
        for map_name in MAPS:
            if t.startswith(map_name + "<") and t.endswith(">"):
                if not isinstance(value, dict):
                    raise wrong("a mapping is expected")
                key_type, value_type = _split_top_level(t[len(map_name) + 1 : -1])
                if not value:
                    return f"<{rust_type}>::new()"
                pairs = ", ".join(
                    f"({cls.literal(name, k, key_type)}, {cls.literal(name, v, value_type)})" for k, v in value.items()
                )
                return f"<{rust_type}>::from([{pairs}])"
        raise wrong("the Rust translator writes integers, floats, bool, String, &str, PathBuf, Option, Vec and maps")

    @classmethod
    def comment(cls, cmt_str):
        return f"// {cmt_str}".strip()

    @classmethod
    def assign(cls, name, str_val):
        if not RUST_IDENTIFIER.match(name):
            raise ValueError(f"parameter name {name!r} is not a Rust identifier")
        rust_type = cls.declared.get(name)
        if rust_type is None:
            raise ParameterTypeError(
                f"parameter {name!r} is not declared in the notebook's parameters cell "
                f"(as `let {name}: TYPE = ...;`), so its Rust type is unknown"
            )
        return f"let {name}: {rust_type} = {str_val};"

    @classmethod
    def codify(cls, parameters, comment="Parameters"):
        """The injected cell: one typed `let` per parameter, as a person would write it."""
        try:
            lines = [cls.comment(comment)]
            for name, value in parameters.items():
                rust_type = cls.declared.get(name)
                value_code = cls.literal(name, value, rust_type) if rust_type is not None else ""
                lines.append(cls.assign(name, value_code))
            return "\n".join(lines) + "\n"
        finally:
            # Declarations belong to one notebook: never reuse them for the next one.
            cls.declared = {}

    @classmethod
    def statements(cls, source):
        """The cell's `let` statements, one line each: a declaration written over several lines
        (a list with one element per line) is joined up to its `;`, its first line's comment
        kept as the help text and the comments of the other lines dropped."""
        statements, pending, help_text = [], None, ""
        for line in source.splitlines():
            code, comment = _split_comment(line)
            if pending is None:
                if not re.match(r"^\s*let\s", code) or code.rstrip().endswith(";"):
                    statements.append(line)
                    continue
                pending, help_text = code.strip(), comment.strip()
            else:
                pending += " " + code.strip()
            if pending.rstrip().endswith(";"):
                statements.append(pending + (f" // {help_text}" if help_text else ""))
                pending = None
        return statements

    @classmethod
    def inspect(cls, parameters_cell):
        """Read `let name: Type = default; // help` declarations of a parameters cell."""
        params = []
        for line in cls.statements(parameters_cell.source):
            m = DECLARATION.match(line)
            if m:
                params.append(
                    Parameter(
                        name=m.group("name"),
                        inferred_type_name=m.group("type").strip(),
                        default=m.group("default").strip(),
                        help=(m.group("help") or "").strip(),
                    )
                )
        cls.declared = {p.name: p.inferred_type_name for p in params}
        return params


def register():
    # evcxr's kernelspec is named `rust` with language `rust`; executed notebooks record `Rust`.
    for key in ("rust", "Rust"):
        papermill_translators.register(key, RustTranslator)


register()
