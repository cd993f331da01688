//! A look at an ONNX file before ONNX Runtime loads it, for models that arrive unchecked (a
//! watched folder fills from the S3 bucket, whose credentials are often the well-known default).
//!
//! Two ways a tiny graph costs gigabytes:
//!
//! - **at load**: ONNX Runtime folds constant sub-graphs (the model server loads without that
//!   rewrite, but a runtime that folds would do it): a 203-byte graph holding
//!   `ConstantOfShape([16384, 16384])` allocates a gigabyte before a single request;
//! - **per request**: an operator that sizes its output from the *values* of a tensor rather than
//!   from the shapes of its inputs. A 182-byte graph with a `Range` node whose `limit` comes from
//!   the request cost 544 MB per request (four at once, 1,088 MB), far beyond what the request
//!   limits ([`super::config::InferLimits`]) let a request cost.
//!
//! [`check`] reads the protobuf by hand (no generated types needed: only a few fields matter)
//! and accepts a graph only when every node, in the main graph and in sub-graphs, is
//!
//! - an operator whose output size follows from its inputs' shapes and its attributes (the
//!   dense-network and classic-classifier operators of [`SHAPE_SIZED`] and, in the `ai.onnx.ml`
//!   domain, [`ML_SHAPE_SIZED`]: what jukebox-nn writes — Concat, Gemm, Relu, Softmax — and what
//!   skl2onnx, tf2onnx and torch.onnx write for dense models and scikit-learn classifiers), or
//! - one of the value-sized operators of [`VALUE_SIZED`] (`ConstantOfShape`, `Expand`, `Tile`,
//!   `Range`) whose size inputs are constants in the file and make a tensor within the limit.
//!
//! Anything else is refused with the node and operator named: `Resize`, `Upsample`, `Pad`,
//! `OneHot`, `NonZero`, `Compress`, `Unique`, `Loop`, `Scan`, `If`, custom domains, value-sized
//! operators fed by the request. The output of an accepted operator is at most its inputs times
//! constants stored in the file, so the file-size cap ([`super::config::LoadLimits::max_file_bytes`]) and
//! the request limits bound what a request costs.

use std::collections::HashMap;

/// Bytes per element assumed for the tensors a node would create (FP32; wider types only make a
/// bomb bigger, and the limit has a wide margin).
const ELEMENT_BYTES: u64 = 4;

/// Shape tensors larger than this are not tracked (real shape tensors have a handful of values).
const MAX_TRACKED_VALUES: usize = 64;

/// Operators of the default ONNX domain whose outputs are sized by their inputs' shapes and their
/// attributes (element-wise and broadcasting arithmetic, activations, matrix products,
/// normalisations, reshaping, slicing, reductions), never by the values of a tensor. `TopK`'s
/// `k` and `Reshape`'s shape are values, but cannot make an output larger than the input.
#[rustfmt::skip]
const SHAPE_SIZED: &[&str] = &[
    // element-wise, one input
    "Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Cast", "CastLike", "Ceil", "Cos", "Cosh",
    "Erf", "Exp", "Floor", "Identity", "IsInf", "IsNaN", "Log", "Neg", "Not", "Reciprocal", "Round", "Sign",
    "Sin", "Sinh", "Sqrt", "Tan", "Tanh",
    // activations
    "Celu", "Clip", "Elu", "Gelu", "HardSigmoid", "HardSwish", "Hardmax", "LeakyRelu", "LogSoftmax", "Mish",
    "PRelu", "Relu", "Selu", "Shrink", "Sigmoid", "Softmax", "Softplus", "Softsign", "ThresholdedRelu",
    // broadcasting arithmetic and logic
    "Add", "And", "Div", "Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "Max", "Mean", "Min",
    "Mod", "Mul", "Or", "Pow", "Sub", "Sum", "Where", "Xor",
    // matrix products and quantisation
    "DequantizeLinear", "DynamicQuantizeLinear", "Gemm", "MatMul", "MatMulInteger", "QLinearMatMul",
    "QuantizeLinear",
    // normalisation
    "BatchNormalization", "Dropout", "GroupNormalization", "InstanceNormalization", "LayerNormalization",
    "LpNormalization", "MeanVarianceNormalization",
    // shapes, slices, gathers
    "Concat", "Constant", "Flatten", "Gather", "GatherElements", "Reshape", "Shape", "Size", "Slice", "Split",
    "Squeeze", "Transpose", "Unsqueeze",
    // reductions
    "ArgMax", "ArgMin", "CumSum", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
    "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "TopK",
];

/// Operators of the `ai.onnx.ml` domain (scikit-learn models exported by skl2onnx): sized by
/// their input's rows and their attributes (classes, targets, categories).
#[rustfmt::skip]
const ML_SHAPE_SIZED: &[&str] = &[
    "ArrayFeatureExtractor", "Binarizer", "CategoryMapper", "DictVectorizer", "FeatureVectorizer", "Imputer",
    "LabelEncoder", "LinearClassifier", "LinearRegressor", "Normalizer", "OneHotEncoder", "SVMClassifier",
    "SVMRegressor", "Scaler", "TreeEnsemble", "TreeEnsembleClassifier", "TreeEnsembleRegressor", "ZipMap",
];

/// Operators sized by the values of one input (`ConstantOfShape`'s shape, `Expand`'s shape,
/// `Tile`'s repeats, `Range`'s start, limit and delta): accepted only when those are constants
/// in the file and the tensor they make stays within the limit.
const VALUE_SIZED: &[&str] = &["ConstantOfShape", "Expand", "Range", "Tile"];

/// `Ok(())` when every node is accepted (see the module docs) and none would create a tensor over
/// `max_bytes` from constants; `Err(reason)` naming the node and its operator otherwise, or when
/// the file is not a readable ONNX protobuf.
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
    // Initializers first (field 5): nodes may refer to them wherever they appear. One that is
    // also a graph input (field 11, ValueInfoProto name = 1) is only a default a request may
    // override, so it does not count as a constant.
    let mut graph_inputs = Vec::new();
    for field in Fields::new(graph) {
        let (number, value) = field?;
        match number {
            5 => {
                let (name, constant) = read_tensor(value.bytes()?)?;
                constants.insert(name, constant);
            }
            11 => {
                for input_field in Fields::new(value.bytes()?) {
                    let (number, value) = input_field?;
                    if number == 1 {
                        graph_inputs.push(value.string()?);
                    }
                }
            }
            _ => {}
        }
    }
    for input in &graph_inputs {
        constants.remove(input);
    }
    let mut index = 0;
    for field in Fields::new(graph) {
        let (number, value) = field?;
        if number == 1 {
            check_node(value.bytes()?, index, max_bytes, constants, depth)?;
            index += 1;
        }
    }
    Ok(())
}

/// One NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5, domain = 7.
fn check_node(
    node: &[u8],
    index: usize,
    max_bytes: u64,
    constants: &mut HashMap<String, Constant>,
    depth: usize,
) -> Result<(), String> {
    let (mut inputs, mut outputs, mut op_type, mut value_tensor) = (Vec::new(), Vec::new(), String::new(), None);
    let (mut name, mut domain) = (String::new(), String::new());
    let mut subgraphs = Vec::new();
    for field in Fields::new(node) {
        let (number, value) = field?;
        match number {
            1 => inputs.push(value.string()?),
            2 => outputs.push(value.string()?),
            3 => name = value.string()?,
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
            7 => domain = value.string()?,
            _ => {}
        }
    }
    let node = describe_node(&name, index, &op_type, &outputs);
    let default_domain = domain.is_empty() || domain == "ai.onnx";
    let accepted = match domain.as_str() {
        _ if default_domain => SHAPE_SIZED.contains(&op_type.as_str()) || VALUE_SIZED.contains(&op_type.as_str()),
        "ai.onnx.ml" => ML_SHAPE_SIZED.contains(&op_type.as_str()),
        _ => false,
    };
    if !accepted {
        let operator = if default_domain { op_type.clone() } else { format!("{domain}.{op_type}") };
        return Err(format!(
            "{node}: operator {operator} is not one the model server runs. It serves dense networks and \
             classic classifiers, whose operators size their outputs by their inputs' shapes (Gemm, MatMul, \
             Relu, Softmax, Concat, ... and scikit-learn's ai.onnx.ml operators); an operator sized by the \
             values of a tensor or by control flow (Range, Resize, Pad, OneHot, NonZero, Loop, If, ...) \
             could make one request allocate without bound. Export the model without it"
        ));
    }
    let constant_values =
        |index: usize| inputs.get(index).and_then(|name| constants.get(name)).and_then(|c| c.values.clone());
    let product = |values: &[i64]| values.iter().fold(1u64, |acc, &v| acc.saturating_mul(v.max(0) as u64));
    // Which input sizes the output (for the message), and the elements it makes when constant.
    let created = match op_type.as_str() {
        "ConstantOfShape" => Some((0, constant_values(0).map(|shape| product(&shape)))),
        "Expand" => Some((1, constant_values(1).map(|shape| product(&shape)))),
        "Tile" => Some((
            1,
            constant_values(1).map(|repeats| {
                let input = inputs.first().and_then(|name| constants.get(name)).map_or(1, |c| c.elements.max(1));
                product(&repeats).saturating_mul(input)
            }),
        )),
        "Range" => {
            let scalar = |i: usize| constant_values(i).filter(|v| v.len() == 1).map(|v| v[0]);
            let length = match (scalar(0), scalar(1), scalar(2)) {
                (Some(start), Some(limit), Some(delta)) if delta != 0 => Some(range_length(start, limit, delta)),
                _ => None,
            };
            let sizing = if scalar(0).is_none() {
                0
            } else if scalar(1).is_none() {
                1
            } else {
                2
            };
            Some((sizing, length))
        }
        _ => None,
    };
    if let Some((sizing, elements)) = created {
        let Some(elements) = elements else {
            let input = inputs.get(sizing).map_or("(missing)", String::as_str);
            return Err(format!(
                "{node} sizes its output by the values of input '{input}', which is not an integer constant \
                 in the file: a request could make it allocate without bound (a 182-byte Range model cost \
                 544 MB per request). The model server accepts {op_type} only with constant inputs"
            ));
        };
        let bytes = elements.saturating_mul(ELEMENT_BYTES);
        if bytes > max_bytes {
            return Err(format!(
                "{node} would create a tensor of {elements} elements (~{} MB) from constants; \
                 the limit for watched models is {} MB",
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

/// `node 'name' (Op -> 'output')`, or `node #index (...)` when it has no name.
fn describe_node(name: &str, index: usize, op_type: &str, outputs: &[String]) -> String {
    let output = outputs.first().map_or("?", String::as_str);
    if name.is_empty() {
        format!("node #{index} ({op_type} -> '{output}')")
    } else {
        format!("node '{name}' ({op_type} -> '{output}')")
    }
}

/// Elements of `Range(start, limit, delta)`: `max(ceil((limit - start) / delta), 0)`.
fn range_length(start: i64, limit: i64, delta: i64) -> u64 {
    let (span, delta) = (i128::from(limit) - i128::from(start), i128::from(delta));
    let length = if (span > 0) == (delta > 0) && span != 0 { (span.abs() + delta.abs() - 1) / delta.abs() } else { 0 };
    u64::try_from(length).unwrap_or(u64::MAX)
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

    fn string_field(number: u32, text: &str) -> Vec<u8> {
        bytes_field(number, text.as_bytes())
    }

    /// NodeProto { input, output, name, op_type, domain }.
    fn node(op_type: &str, domain: &str, inputs: &[&str], output: &str) -> Vec<u8> {
        let mut node: Vec<u8> = inputs.iter().flat_map(|i| string_field(1, i)).collect();
        node.extend(string_field(2, output));
        node.extend(string_field(3, &format!("{}_1", op_type.to_lowercase())));
        node.extend(string_field(4, op_type));
        if !domain.is_empty() {
            node.extend(string_field(7, domain));
        }
        node
    }

    /// A scalar INT64 initializer.
    fn scalar(name: &str, value: i64) -> Vec<u8> {
        let mut tensor = key(2, 0);
        tensor.extend(encode_varint(7)); // INT64, no dims: a scalar
        tensor.extend(string_field(8, name));
        tensor.extend(bytes_field(9, &value.to_le_bytes()));
        tensor
    }

    /// ModelProto { graph { nodes, initializers, inputs (names only) } }.
    fn model(nodes: &[Vec<u8>], initializers: &[Vec<u8>], inputs: &[&str]) -> Vec<u8> {
        let mut graph: Vec<u8> = nodes.iter().flat_map(|n| bytes_field(1, n)).collect();
        graph.extend(initializers.iter().flat_map(|t| bytes_field(5, t)));
        graph.extend(inputs.iter().flat_map(|i| bytes_field(11, &string_field(1, i))));
        bytes_field(7, &graph)
    }

    #[test]
    fn range_sized_by_the_request_is_refused_naming_node_and_input() {
        // y = Range(0, Cast(x), 1): the outside probe's 182-byte model, in substance.
        let graph = model(
            &[node("Cast", "", &["x"], "n"), node("Range", "", &["zero", "n", "one"], "y")],
            &[scalar("zero", 0), scalar("one", 1)],
            &["x"],
        );
        let reason = check(&graph, 64 << 20).unwrap_err();
        assert!(reason.contains("node 'range_1' (Range -> 'y')") && reason.contains("input 'n'"), "{reason}");
        assert!(reason.contains("not an integer constant"), "{reason}");
    }

    #[test]
    fn range_of_constants_is_refused_over_the_limit_and_accepted_within() {
        let range = |limit: i64| {
            model(
                &[node("Range", "", &["zero", "limit", "one"], "y")],
                &[scalar("zero", 0), scalar("limit", limit), scalar("one", 1)],
                &[],
            )
        };
        let reason = check(&range(136_000_000), 64 << 20).unwrap_err();
        assert!(reason.contains("Range") && reason.contains("136000000 elements"), "{reason}");
        check(&range(1000), 64 << 20).unwrap();
        // A constant that is also a graph input is a default the request may override.
        let overridable = model(
            &[node("Range", "", &["zero", "limit", "one"], "y")],
            &[scalar("zero", 0), scalar("limit", 10), scalar("one", 1)],
            &["limit"],
        );
        assert!(check(&overridable, 64 << 20).unwrap_err().contains("input 'limit'"));
        assert_eq!(range_length(0, 10, 3), 4);
        assert_eq!(range_length(10, 0, -3), 4);
        assert_eq!(range_length(0, 10, -1), 0);
        assert_eq!(range_length(5, 5, 1), 0);
    }

    #[test]
    fn operators_off_the_list_are_refused_by_name_and_dense_and_sklearn_ones_pass() {
        for (op, domain) in
            [("Resize", ""), ("Loop", ""), ("NonZero", ""), ("OneHot", ""), ("FusedGemm", "com.microsoft")]
        {
            let reason = check(&model(&[node(op, domain, &["x"], "y")], &[], &["x"]), 1 << 20).unwrap_err();
            assert!(
                reason.contains(&format!("({op} -> 'y')")) && reason.contains("is not one the model server runs"),
                "{reason}"
            );
        }
        // jukebox-nn's graph, a Keras/tf2onnx dense layer, a scikit-learn LogisticRegression.
        let dense = model(
            &[
                node("Concat", "", &["a", "b"], "x"),
                node("Gemm", "", &["x", "w", "b0"], "g"),
                node("Relu", "", &["g"], "r"),
                node("MatMul", "", &["r", "w1"], "m"),
                node("Add", "", &["m", "b1"], "s"),
                node("Softmax", "", &["s"], "p"),
                node("LinearClassifier", "ai.onnx.ml", &["x"], "label"),
                node("ZipMap", "ai.onnx.ml", &["p"], "probabilities"),
            ],
            &[],
            &["a", "b"],
        );
        check(&dense, 1 << 20).unwrap();
        // Value-sized operators fed by the request are refused too.
        let expand = model(&[node("Expand", "", &["x", "shape"], "y")], &[], &["x", "shape"]);
        assert!(check(&expand, 1 << 20).unwrap_err().contains("input 'shape'"));
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        assert!(check(b"not an onnx file", 1 << 20).is_err());
        assert!(check(&[], 1 << 20).is_err());
    }
}
