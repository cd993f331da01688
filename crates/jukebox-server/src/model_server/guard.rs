//! A look at an ONNX file before ONNX Runtime loads it, for models that arrive unchecked (a
//! watched folder fills from the S3 bucket, whose credentials are often the well-known default).
//!
//! ONNX Runtime folds constant sub-graphs while it loads a model (`jukebox_runtime` loads with
//! full graph optimisation), so a 203-byte graph holding `ConstantOfShape([16384, 16384])` makes
//! it allocate a gigabyte before a single request. [`check`] reads the protobuf by hand (no
//! generated types needed: only a few fields matter) and refuses a graph whose nodes would
//! materialise a tensor larger than a limit from constant inputs: `ConstantOfShape`, `Expand`
//! and `Tile` with constant shape/repeat inputs, in the main graph and in sub-graphs. It is a
//! guard against the known blow-ups, not a proof; the file-size cap bounds the rest.

use std::collections::HashMap;

/// Bytes per element assumed for the tensors a node would create (FP32; wider types only make a
/// bomb bigger, and the limit has a wide margin).
const ELEMENT_BYTES: u64 = 4;

/// Shape tensors larger than this are not tracked (real shape tensors have a handful of values).
const MAX_TRACKED_VALUES: usize = 64;

/// `Ok(())` when no node of the model would create a tensor over `max_bytes` from constants;
/// `Err(reason)` naming the node otherwise, or when the file is not a readable ONNX protobuf.
pub fn check(model: &[u8], max_bytes: u64) -> Result<(), String> {
    let mut graph = None;
    for field in Fields::new(model) {
        let (number, value) = field?;
        if number == 7 {
            graph = Some(value.bytes()?);
        }
    }
    let graph = graph.ok_or("the file holds no ONNX graph (ModelProto.graph missing)")?;
    let mut constants = HashMap::new();
    check_graph(graph, max_bytes, &mut constants, 0)
}

/// Values of small INT64/INT32 constant tensors (shapes, repeats) and element counts of all
/// constant tensors, by name.
#[derive(Default, Clone)]
struct Constant {
    values: Option<Vec<i64>>,
    elements: u64,
}

fn check_graph(
    graph: &[u8],
    max_bytes: u64,
    constants: &mut HashMap<String, Constant>,
    depth: usize,
) -> Result<(), String> {
    if depth > 16 {
        return Err("sub-graphs nested more than 16 deep".into());
    }
    // Initializers first (field 5): nodes may refer to them wherever they appear.
    for field in Fields::new(graph) {
        let (number, value) = field?;
        if number == 5 {
            let (name, constant) = read_tensor(value.bytes()?)?;
            constants.insert(name, constant);
        }
    }
    for field in Fields::new(graph) {
        let (number, value) = field?;
        if number == 1 {
            check_node(value.bytes()?, max_bytes, constants, depth)?;
        }
    }
    Ok(())
}

fn check_node(
    node: &[u8],
    max_bytes: u64,
    constants: &mut HashMap<String, Constant>,
    depth: usize,
) -> Result<(), String> {
    let (mut inputs, mut outputs, mut op_type, mut value_tensor) = (Vec::new(), Vec::new(), String::new(), None);
    let mut subgraphs = Vec::new();
    for field in Fields::new(node) {
        let (number, value) = field?;
        match number {
            1 => inputs.push(value.string()?),
            2 => outputs.push(value.string()?),
            4 => op_type = value.string()?,
            5 => {
                // AttributeProto: t = 5 (tensor), g = 6 (graph), graphs = 11.
                for attribute_field in Fields::new(value.bytes()?) {
                    let (number, value) = attribute_field?;
                    match number {
                        5 => value_tensor = Some(read_tensor(value.bytes()?)?.1),
                        6 | 11 => subgraphs.push(value.bytes()?),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let constant_values =
        |index: usize| inputs.get(index).and_then(|name| constants.get(name)).and_then(|c| c.values.clone());
    let product = |values: &[i64]| values.iter().fold(1u64, |acc, &v| acc.saturating_mul(v.max(0) as u64));
    let created = match op_type.as_str() {
        "ConstantOfShape" => constant_values(0).map(|shape| product(&shape)),
        "Expand" => constant_values(1).map(|shape| product(&shape)),
        "Tile" => constant_values(1).map(|repeats| {
            let input = inputs.first().and_then(|name| constants.get(name)).map_or(1, |c| c.elements.max(1));
            product(&repeats).saturating_mul(input)
        }),
        _ => None,
    };
    if let Some(elements) = created {
        let bytes = elements.saturating_mul(ELEMENT_BYTES);
        if bytes > max_bytes {
            return Err(format!(
                "node {op_type} -> {:?} would create a constant tensor of {elements} elements (~{} MB) while loading; \
                 the limit for watched models is {} MB",
                outputs.first().map(String::as_str).unwrap_or("?"),
                bytes / 1_000_000,
                max_bytes / 1_000_000
            ));
        }
    }
    if op_type == "Constant" {
        if let (Some(output), Some(tensor)) = (outputs.first(), value_tensor) {
            constants.insert(output.clone(), tensor);
        }
    }
    for subgraph in subgraphs {
        check_graph(subgraph, max_bytes, &mut constants.clone(), depth + 1)?;
    }
    Ok(())
}

/// `(name, constant)` of a TensorProto: dims = 1, data_type = 2, int32_data = 5, int64_data = 7,
/// name = 8, raw_data = 9.
fn read_tensor(tensor: &[u8]) -> Result<(String, Constant), String> {
    let (mut dims, mut data_type, mut name, mut ints, mut raw) = (Vec::new(), 0u64, String::new(), Vec::new(), None);
    for field in Fields::new(tensor) {
        let (number, value) = field?;
        match (number, value) {
            (1, Value::Varint(v)) => dims.push(v as i64),
            (1, Value::Bytes(b)) => dims.extend(packed_varints(b)?.into_iter().map(|v| v as i64)),
            (2, Value::Varint(v)) => data_type = v,
            (5 | 7, Value::Varint(v)) if ints.len() <= MAX_TRACKED_VALUES => ints.push(v as i64),
            (5 | 7, Value::Bytes(b)) if b.len() <= MAX_TRACKED_VALUES * 10 => {
                ints.extend(packed_varints(b)?.into_iter().map(|v| v as i64))
            }
            (8, value) => name = value.string()?,
            (9, Value::Bytes(b)) => raw = Some(b),
            _ => {}
        }
    }
    let elements = dims.iter().fold(1u64, |acc, &d| acc.saturating_mul(d.max(0) as u64));
    // TensorProto.DataType: INT32 = 6, INT64 = 7.
    let values = match (data_type, raw) {
        (7, Some(raw)) if raw.len() % 8 == 0 && raw.len() / 8 <= MAX_TRACKED_VALUES => {
            Some(raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
        }
        (6, Some(raw)) if raw.len() % 4 == 0 && raw.len() / 4 <= MAX_TRACKED_VALUES => {
            Some(raw.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")) as i64).collect())
        }
        (6 | 7, None) if ints.len() <= MAX_TRACKED_VALUES => Some(ints),
        _ => None,
    };
    Ok((name, Constant { values, elements }))
}

fn packed_varints(mut bytes: &[u8]) -> Result<Vec<u64>, String> {
    let mut values = Vec::new();
    while !bytes.is_empty() {
        values.push(varint(&mut bytes)?);
    }
    Ok(values)
}

fn varint(bytes: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first().ok_or("truncated protobuf varint")?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("protobuf varint longer than 10 bytes".into())
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Value<'a> {
    fn bytes(self) -> Result<&'a [u8], String> {
        match self {
            Value::Bytes(b) => Ok(b),
            _ => Err("malformed ONNX protobuf (expected a length-delimited field)".into()),
        }
    }
    fn string(self) -> Result<String, String> {
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }
}

/// The top-level fields of one protobuf message.
struct Fields<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Fields<'a> {
    fn new(message: &'a [u8]) -> Self {
        Self { rest: message, failed: false }
    }

    fn next_field(&mut self) -> Result<(u32, Value<'a>), String> {
        let key = varint(&mut self.rest)?;
        let number = (key >> 3) as u32;
        let value = match key & 7 {
            0 => Value::Varint(varint(&mut self.rest)?),
            1 | 5 => {
                let size = if key & 7 == 1 { 8 } else { 4 };
                if self.rest.len() < size {
                    return Err("truncated protobuf fixed-size field".into());
                }
                self.rest = &self.rest[size..];
                Value::Fixed
            }
            2 => {
                let length = usize::try_from(varint(&mut self.rest)?).map_err(|_| "protobuf length overflow")?;
                if self.rest.len() < length {
                    return Err("truncated protobuf field (the file is cut short?)".into());
                }
                let (bytes, rest) = self.rest.split_at(length);
                self.rest = rest;
                Value::Bytes(bytes)
            }
            other => return Err(format!("not an ONNX protobuf (wire type {other})")),
        };
        Ok((number, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let field = self.next_field();
        self.failed = field.is_err();
        Some(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(number: u32, wire: u64) -> Vec<u8> {
        encode_varint(((number as u64) << 3) | wire)
    }
    fn encode_varint(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }
    fn bytes_field(number: u32, bytes: &[u8]) -> Vec<u8> {
        let mut out = key(number, 2);
        out.extend(encode_varint(bytes.len() as u64));
        out.extend(bytes);
        out
    }

    /// ModelProto { graph { initializer shape = int64 [side, side]; node ConstantOfShape(shape) } }.
    fn bomb(side: i64) -> Vec<u8> {
        let mut tensor = Vec::new();
        tensor.extend(key(1, 0));
        tensor.extend(encode_varint(2)); // dims [2]
        tensor.extend(key(2, 0));
        tensor.extend(encode_varint(7)); // INT64
        tensor.extend(bytes_field(8, b"shape"));
        let raw: Vec<u8> = [side, side].iter().flat_map(|v| v.to_le_bytes()).collect();
        tensor.extend(bytes_field(9, &raw));
        let mut node = bytes_field(1, b"shape");
        node.extend(bytes_field(2, b"big"));
        node.extend(bytes_field(4, b"ConstantOfShape"));
        let mut graph = bytes_field(1, &node);
        graph.extend(bytes_field(5, &tensor));
        bytes_field(7, &graph)
    }

    #[test]
    fn constant_of_shape_bomb_is_refused_and_small_constants_pass() {
        let reason = check(&bomb(16384), 64 << 20).unwrap_err();
        assert!(reason.contains("ConstantOfShape") && reason.contains("big"), "{reason}");
        check(&bomb(16), 64 << 20).unwrap();
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        assert!(check(b"not an onnx file", 1 << 20).is_err());
        assert!(check(&[], 1 << 20).is_err());
    }
}
