"""The Rust translator itself; see the package docstring."""
import json
import math
import re

from papermill.models import Parameter
from papermill.translators import Translator, papermill_translators

# Defined in every injected cell so that the notebook needs no extra crate. Re-running the cell
# redefines the same items, which evcxr allows.
PRELUDE = r"""
#[allow(dead_code)]
struct PapermillNone;
#[allow(dead_code)]
struct PapermillEmpty;
trait FromPapermill<S> { fn from_papermill(value: S) -> Self; }
fn papermill_set<T: FromPapermill<S>, S>(_declared: T, value: S) -> T { T::from_papermill(value) }
macro_rules! papermill_numbers { ($src:ty => $($t:ty),*) => { $(
    impl FromPapermill<$src> for $t { fn from_papermill(v: $src) -> Self { v as $t } }
    impl FromPapermill<$src> for Option<$t> { fn from_papermill(v: $src) -> Self { Some(v as $t) } }
    impl FromPapermill<PapermillNone> for Option<$t> { fn from_papermill(_: PapermillNone) -> Self { None } }
)* } }
papermill_numbers!(i64 => i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);
macro_rules! papermill_floats { ($($t:ty),*) => { $(
    impl FromPapermill<i64> for $t { fn from_papermill(v: i64) -> Self { v as $t } }
    impl FromPapermill<f64> for $t { fn from_papermill(v: f64) -> Self { v as $t } }
    impl FromPapermill<i64> for Option<$t> { fn from_papermill(v: i64) -> Self { Some(v as $t) } }
    impl FromPapermill<f64> for Option<$t> { fn from_papermill(v: f64) -> Self { Some(v as $t) } }
    impl FromPapermill<PapermillNone> for Option<$t> { fn from_papermill(_: PapermillNone) -> Self { None } }
)* } }
papermill_floats!(f32, f64);
macro_rules! papermill_texts { ($($t:ty),*) => { $(
    impl FromPapermill<&'static str> for $t { fn from_papermill(v: &'static str) -> Self { v.into() } }
    impl FromPapermill<&'static str> for Option<$t> { fn from_papermill(v: &'static str) -> Self { Some(v.into()) } }
    impl FromPapermill<PapermillNone> for Option<$t> { fn from_papermill(_: PapermillNone) -> Self { None } }
)* } }
papermill_texts!(String, std::path::PathBuf);
impl FromPapermill<bool> for bool { fn from_papermill(v: bool) -> Self { v } }
impl FromPapermill<bool> for Option<bool> { fn from_papermill(v: bool) -> Self { Some(v) } }
impl FromPapermill<PapermillNone> for Option<bool> { fn from_papermill(_: PapermillNone) -> Self { None } }
impl<T: FromPapermill<S>, S> FromPapermill<Vec<S>> for Vec<T> {
    fn from_papermill(v: Vec<S>) -> Self { v.into_iter().map(T::from_papermill).collect() }
}
impl<T> FromPapermill<PapermillEmpty> for Vec<T> { fn from_papermill(_: PapermillEmpty) -> Self { Vec::new() } }
impl<T: FromPapermill<S>, S> FromPapermill<Vec<(&'static str, S)>> for std::collections::HashMap<String, T> {
    fn from_papermill(v: Vec<(&'static str, S)>) -> Self { v.into_iter().map(|(k, x)| (k.to_string(), T::from_papermill(x))).collect() }
}
impl<T: FromPapermill<S>, S> FromPapermill<Vec<(&'static str, S)>> for std::collections::BTreeMap<String, T> {
    fn from_papermill(v: Vec<(&'static str, S)>) -> Self { v.into_iter().map(|(k, x)| (k.to_string(), T::from_papermill(x))).collect() }
}
""".strip()

RUST_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class RustTranslator(Translator):
    @classmethod
    def translate_escaped_str(cls, str_val):
        # JSON string escapes (\" \\ \n \t \uXXXX) are valid Rust escapes except \uXXXX, which Rust
        # writes \u{XXXX}; keep non-ASCII text as is instead of escaping it.
        body = json.dumps(str_val, ensure_ascii=False)[1:-1]
        return '"' + body + '"'

    @classmethod
    def translate_none(cls, val):
        return "PapermillNone"

    @classmethod
    def translate_int(cls, val):
        return f"{val}i64"

    @classmethod
    def translate_float(cls, val):
        if math.isnan(val):
            return "f64::NAN"
        if math.isinf(val):
            return "f64::INFINITY" if val > 0 else "f64::NEG_INFINITY"
        return f"{val!r}f64" if ("." in repr(val) or "e" in repr(val)) else f"{val!r}.0f64"

    @classmethod
    def _unify(cls, values):
        # Rust needs one element type: a list of ints and floats becomes a list of floats.
        kinds = {type(v) for v in values}
        if kinds <= {int, float} and float in kinds:
            return [float(v) for v in values]
        if len({(bool if isinstance(v, bool) else type(v)) for v in values}) > 1:
            raise ValueError(f"Rust parameters need one element type, got {values!r}")
        return values

    @classmethod
    def translate_list(cls, val):
        if not val:
            return "PapermillEmpty"
        items = ", ".join(cls.translate(v) for v in cls._unify(list(val)))
        return f"vec![{items}]"

    @classmethod
    def translate_dict(cls, val):
        keys = list(val.keys())
        values = cls._unify(list(val.values()))
        items = ", ".join(
            f"({cls.translate_escaped_str(str(k))}, {cls.translate(v)})" for k, v in zip(keys, values)
        )
        return f"vec![{items}]"

    @classmethod
    def comment(cls, cmt_str):
        return f"// {cmt_str}".strip()

    @classmethod
    def assign(cls, name, str_val):
        if not RUST_IDENTIFIER.match(name):
            raise ValueError(f"parameter name {name!r} is not a Rust identifier")
        return f"let {name} = papermill_set({name}, {str_val});"

    @classmethod
    def codify(cls, parameters, comment="Parameters"):
        lines = [cls.comment(comment), PRELUDE]
        lines += [cls.assign(name, cls.translate(val)) for name, val in parameters.items()]
        return "\n".join(lines) + "\n"

    @classmethod
    def inspect(cls, parameters_cell):
        """Read `let name: Type = default; // help` lines of a parameters cell."""
        pattern = re.compile(
            r"^\s*let\s+(?:mut\s+)?(?P<name>[A-Za-z_]\w*)\s*:\s*(?P<type>[^=]+?)\s*=\s*(?P<default>.+?);\s*(?://\s*(?P<help>.*))?$"
        )
        params = []
        for line in parameters_cell.source.splitlines():
            m = pattern.match(line)
            if m:
                params.append(
                    Parameter(
                        name=m.group("name"),
                        inferred_type_name=m.group("type").strip(),
                        default=m.group("default").strip(),
                        help=(m.group("help") or "").strip(),
                    )
                )
        return params


def register():
    # evcxr's kernelspec is named `rust` with language `rust`; executed notebooks record `Rust`.
    for key in ("rust", "Rust"):
        papermill_translators.register(key, RustTranslator)


register()
