//! The size check of an infer request before its tensors are decoded.
//!
//! Decoding a 31 MB JSON body of 1.25 M rows into `f64`s, then `f32`s, then running it and
//! writing an answer took 3.4 GB and 30 s. This pass streams over the JSON with serde, keeping
//! nothing but counters: it reads each input's `shape` (rows = first dimension, elements = the
//! product) and counts the values in `data` without storing them. It stops at the first value
//! over a limit, so a refusal usually costs microseconds (clients send `shape` before `data`),
//! and at most one scan of the body otherwise.
//!
//! A small body (a few kilobytes: one song, a few rows) is not scanned first: decoding it costs
//! next to nothing whatever it declares, and a second pass over the JSON was a sixth of the
//! server's instructions per one-song request. Its decoder checks the same [`Scan`] as it reads
//! (see `tensors::decode_checked`), so it is refused with the same words.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::fmt;

use jukebox_protocol::text::thousands;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;

use super::config::InferLimits;
use super::error::ModelServerError;

/// Total elements the request declares (for the in-flight budget), or the limit it breaks.
/// Malformed JSON is not judged here: the full parse that follows names the problem.
pub fn check(json: &[u8], limits: &InferLimits) -> Result<u64, ModelServerError> {
    let scan = Scan::new(limits);
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let result = (&scan).deserialize(&mut deserializer);
    if let Some(violation) = scan.take_violation() {
        return Err(violation);
    }
    match result {
        Ok(()) => Ok(scan.elements()),
        Err(_) => Ok(1),
    }
}

/// A request's limits, checked as its JSON is read, input by input in the body's order: by
/// [`check`] before decoding, or by the decoder itself for small bodies. A broken limit ends the
/// read with a serde error and leaves the refusal to [`Scan::take_violation`].
pub struct Scan<'a> {
    limits: &'a InferLimits,
    violation: RefCell<Option<ModelServerError>>,
    /// Elements declared by the shapes so far.
    total: Cell<u64>,
    /// `data` values counted so far.
    data_total: Cell<u64>,
}

impl<'a> Scan<'a> {
    pub fn new(limits: &'a InferLimits) -> Self {
        Scan { limits, violation: RefCell::new(None), total: Cell::new(0), data_total: Cell::new(0) }
    }

    /// The limit the request broke, if it broke one (the read stopped there).
    pub fn take_violation(&self) -> Option<ModelServerError> {
        self.violation.borrow_mut().take()
    }

    /// The request's elements so far: the larger of what its shapes declare and the `data`
    /// values counted (the weight it takes of the in-flight budget).
    pub fn elements(&self) -> u64 {
        self.total.get().max(self.data_total.get())
    }

    /// The `shape` of the input at `index` (named when its `name` came before its `shape`).
    pub fn check_input_shape<E: de::Error>(&self, index: usize, name: Option<&str>, shape: &[i64]) -> Result<(), E> {
        if shape.len() > 32 {
            return Err(self.refuse(
                format!("input #{index} has {} dimensions", shape.len()),
                "32 dimensions".into(),
                "tensor rank",
            ));
        }
        self.check_shape(|| describe(name, index), shape)
    }

    /// `n` more `data` values of an input.
    pub fn count_values<E: de::Error>(&self, n: u64) -> Result<(), E> {
        let total = self.data_total.get().saturating_add(n);
        self.data_total.set(total);
        if total > self.limits.max_elements {
            return Err(self.refuse(
                format!("the inputs' `data` hold more than {} values", thousands(self.limits.max_elements)),
                format!("{} elements", thousands(self.limits.max_elements)),
                "--max-elements",
            ));
        }
        Ok(())
    }

    fn refuse<E: de::Error>(&self, what: String, limit: String, setting: &'static str) -> E {
        *self.violation.borrow_mut() = Some(ModelServerError::OverLimit { what, limit, setting });
        E::custom("over a request limit")
    }

    /// `input` describes the input, only when it is refused (formatting it for every input was a
    /// twentieth of a one-song request's work).
    fn check_shape<E: de::Error>(&self, input: impl Fn() -> String, shape: &[i64]) -> Result<(), E> {
        let rows = shape.first().map_or(1, |&d| d.max(0) as u64);
        let elements = shape.iter().fold(1u64, |acc, &d| acc.saturating_mul(d.max(0) as u64));
        if rows > self.limits.max_rows {
            return Err(self.refuse(
                format!("{} has {} rows (shape {shape:?})", input(), thousands(rows)),
                format!("{} rows", thousands(self.limits.max_rows)),
                "--max-rows",
            ));
        }
        let total = self.total.get().saturating_add(elements);
        self.total.set(total);
        if elements > self.limits.max_elements {
            return Err(self.refuse(
                format!("{} has {} elements (shape {shape:?})", input(), thousands(elements)),
                format!("{} elements", thousands(self.limits.max_elements)),
                "--max-elements",
            ));
        }
        if total > self.limits.max_elements {
            return Err(self.refuse(
                format!("the inputs up to {} have {} elements together", input(), thousands(total)),
                format!("{} elements", thousands(self.limits.max_elements)),
                "--max-elements",
            ));
        }
        Ok(())
    }

    fn count_value<E: de::Error>(&self) -> Result<(), E> {
        self.count_values(1)
    }
}

/// A string borrowed from the body when it has no escapes (serde's own `Cow<str>` always copies):
/// a request's keys and names, read twice per larger request (size check, then decoding), are
/// most of its allocations otherwise. Here because the scan is the lower of the two readers:
/// the decoder (`tensors`) uses it too.
pub struct Str<'de>(pub Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(StrVisitor)
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Str<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
        Ok(Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
        Ok(Str(Cow::Owned(v.to_string())))
    }
}

/// The request object: only `inputs` is looked into.
impl<'de> DeserializeSeed<'de> for &Scan<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(RequestVisitor(self))
    }
}

struct RequestVisitor<'s, 'a>(&'s Scan<'a>);

impl<'de> Visitor<'de> for RequestVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an inference request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Str<'de>>()? {
            if key.0 == "inputs" {
                map.next_value_seed(EachInput(|index| InputVisitor { scan: self.0, index }))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// The request's `inputs` list, each input (a JSON object) read by the visitor `visitor(index)`
/// makes (`index`: its place in the list, for refusals that cannot name it); their values in
/// order. One reader of the list for the scan (values `()`, nothing stored) and the decoder
/// (`tensors`).
pub struct EachInput<F>(pub F);

impl<'de, V: Visitor<'de>, F: FnMut(usize) -> V> DeserializeSeed<'de> for EachInput<F> {
    type Value = Vec<V::Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<V::Value>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, V: Visitor<'de>, F: FnMut(usize) -> V> Visitor<'de> for EachInput<F> {
    type Value = Vec<V::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of input tensors")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Vec<V::Value>, A::Error> {
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(16).min(64));
        while let Some(value) = seq.next_element_seed(InputObject((self.0)(values.len())))? {
            values.push(value);
        }
        Ok(values)
    }
}

/// One element of [`EachInput`]: a JSON object, handed to its visitor.
struct InputObject<V>(V);

impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for InputObject<V> {
    type Value = V::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        deserializer.deserialize_map(self.0)
    }
}

struct InputVisitor<'s, 'a> {
    scan: &'s Scan<'a>,
    index: usize,
}

impl<'de> Visitor<'de> for InputVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an input tensor object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut name: Option<Str<'de>> = None;
        let mut shape: Option<Vec<i64>> = None;
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match key.0.as_ref() {
                "name" => name = Some(map.next_value()?),
                "shape" => {
                    let value: Vec<i64> = map.next_value()?;
                    self.scan.check_input_shape(self.index, name.as_ref().map(|n| n.0.as_ref()), &value)?;
                    shape = Some(value);
                }
                "data" => map.next_value_seed(DataCounter(self.scan))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let _ = shape;
        Ok(())
    }
}

fn describe(name: Option<&str>, index: usize) -> String {
    match name {
        Some(name) => format!("input '{name}'"),
        None => format!("input #{index}"),
    }
}

/// Counts the leaves of `data` (flat or nested lists) without storing them.
struct DataCounter<'s, 'a>(&'s Scan<'a>);

impl<'de> DeserializeSeed<'de> for DataCounter<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DataCounter<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tensor data")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(DataCounter(self.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.0.count_value()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.0.count_value()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.0.count_value()
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.0.count_value()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.0.count_value()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> InferLimits {
        InferLimits { max_rows: 100, max_elements: 1000, ..InferLimits::default() }
    }

    #[test]
    fn rows_over_the_limit_are_named_with_the_input() {
        let body = br#"{"inputs":[{"name":"danceability","shape":[2000000,1],"datatype":"FP32","data":[1,2]}]}"#;
        let err = check(body, &InferLimits::default()).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("input 'danceability' has 2,000,000 rows"), "{message}");
        assert!(message.contains("at most 100,000 rows") && message.contains("--max-rows"), "{message}");
        assert_eq!(err.status(), axum::http::StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn data_before_shape_is_counted_and_stops_early() {
        let values = vec!["1"; 2000].join(",");
        let body = format!(r#"{{"inputs":[{{"name":"x","data":[[{values}]],"shape":[1,2000]}}]}}"#);
        let message = check(body.as_bytes(), &limits()).unwrap_err().to_string();
        assert!(message.contains("more than 1,000 values"), "{message}");
    }

    #[test]
    fn totals_over_inputs_and_allowed_requests() {
        let body = br#"{"inputs":[{"name":"a","shape":[100,6]},{"name":"b","shape":[100,6]}]}"#;
        let message = check(body, &limits()).unwrap_err().to_string();
        assert!(message.contains("1,200 elements together"), "{message}");
        let ok =
            br#"{"id":"x","inputs":[{"name":"a","shape":[10,6],"data":[[1,2,3,4,5,6]]}],"outputs":[{"name":"o"}]}"#;
        assert_eq!(check(ok, &limits()).unwrap(), 60);
        // Malformed JSON is left to the full parse.
        assert_eq!(check(b"{not json", &limits()).unwrap(), 1);
    }
}
