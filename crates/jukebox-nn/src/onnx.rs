//! Export a [`Network`] as an ONNX model (IR version 8, opset 17).
//!
//! The graph takes one float input per feature, each `[batch, 1]` with a symbolic batch size,
//! because that is how the workshop's Keras model (one `Input` per column) and its KServe
//! requests look. The inputs are concatenated along axis 1, then every dense layer becomes a
//! `Gemm` (weights `dense_i/kernel` `[inputs, outputs]`, bias `dense_i/bias`) followed by its
//! activation node, and the last node writes the output tensor `[batch, outputs]`.
//!
//! The bytes depend only on the network and the spec (no timestamps, no random ids), so the same
//! model always serialises identically, which keeps checksums and registry entries stable.

use std::collections::HashSet;

use onnx_protobuf::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::dimension,
    tensor_shape_proto::Dimension, type_proto, AttributeProto, GraphProto, Message, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use protobuf::{EnumOrUnknown, MessageField};

use crate::network::layer_name;
use crate::{Activation, Network, NnError};

/// ONNX IR version written (ONNX 1.13+ and every current runtime read it).
pub const IR_VERSION: i64 = 8;
/// Default-domain operator set the graph uses.
pub const OPSET_VERSION: i64 = 17;
/// `producer_name` of every exported model.
pub const PRODUCER_NAME: &str = "jukebox";
/// Name of the symbolic batch dimension on inputs and output.
pub const BATCH_DIM: &str = "batch";

/// Names and metadata for an exported graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnnxSpec {
    pub graph_name: String,
    /// One name per network input, in feature order; each becomes a `[batch, 1]` graph input.
    pub input_names: Vec<String>,
    /// Name of the `[batch, n_outputs]` graph output.
    pub output_name: String,
    /// Written to the model's `metadata_props` in this order (e.g. feature order, class list).
    pub metadata: Vec<(String, String)>,
}

impl OnnxSpec {
    /// A spec with output `output` and no metadata.
    pub fn new(graph_name: impl Into<String>, input_names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        OnnxSpec {
            graph_name: graph_name.into(),
            input_names: input_names.into_iter().map(Into::into).collect(),
            output_name: "output".into(),
            metadata: Vec::new(),
        }
    }
}

/// Serialises `network` as an ONNX `ModelProto`.
///
/// Fails when the spec has a different number of input names than the network has inputs,
/// when a name is empty or used twice (also against the internal tensor names `features`,
/// `dense_i/...`), or when a metadata key repeats.
pub fn to_onnx_bytes(network: &Network, spec: &OnnxSpec) -> Result<Vec<u8>, NnError> {
    Ok(to_model_proto(network, spec)?.write_to_bytes()?)
}

/// The model as a protobuf message, for callers that want to inspect or extend it.
pub fn to_model_proto(network: &Network, spec: &OnnxSpec) -> Result<ModelProto, NnError> {
    check_spec(network, spec)?;
    let mut graph = GraphProto {
        name: spec.graph_name.clone(),
        doc_string: format!("Dense network exported by jukebox-nn {}", env!("CARGO_PKG_VERSION")),
        ..Default::default()
    };

    for name in &spec.input_names {
        graph.input.push(float_value_info(
            name,
            Dimension { value: Some(dimension::Value::DimValue(1)), ..Default::default() },
        ));
    }
    const CONCATENATED: &str = "features";
    graph.node.push(node("concat", "Concat", spec.input_names.clone(), CONCATENATED, vec![int_attribute("axis", 1)]));

    let last = network.layers().len() - 1;
    let mut current = CONCATENATED.to_string();
    for (i, layer) in network.layers().iter().enumerate() {
        let name = layer_name(i);
        let (kernel, bias) = (format!("{name}/kernel"), format!("{name}/bias"));
        graph.initializer.push(float_tensor(&kernel, &[layer.inputs(), layer.outputs()], layer.weights()));
        graph.initializer.push(float_tensor(&bias, &[layer.outputs()], layer.bias()));

        let activation_op = match layer.activation() {
            Activation::Relu => Some(("Relu", vec![])),
            Activation::Softmax => Some(("Softmax", vec![int_attribute("axis", -1)])),
            Activation::Identity => None,
        };
        let gemm_output =
            if i == last && activation_op.is_none() { spec.output_name.clone() } else { format!("{name}/gemm") };
        graph.node.push(node(&format!("{name}/Gemm"), "Gemm", vec![current, kernel, bias], &gemm_output, vec![]));
        current = gemm_output;

        if let Some((op, attributes)) = activation_op {
            let output = if i == last { spec.output_name.clone() } else { format!("{name}/{}", op.to_lowercase()) };
            graph.node.push(node(&format!("{name}/{op}"), op, vec![current], &output, attributes));
            current = output;
        }
    }
    let n_outputs =
        Dimension { value: Some(dimension::Value::DimValue(network.n_outputs() as i64)), ..Default::default() };
    graph.output.push(float_value_info(&spec.output_name, n_outputs));

    Ok(ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET_VERSION, ..Default::default() }],
        producer_name: PRODUCER_NAME.into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: MessageField::some(graph),
        metadata_props: spec
            .metadata
            .iter()
            .map(|(key, value)| StringStringEntryProto { key: key.clone(), value: value.clone(), ..Default::default() })
            .collect(),
        ..Default::default()
    })
}

fn check_spec(network: &Network, spec: &OnnxSpec) -> Result<(), NnError> {
    if spec.input_names.len() != network.n_inputs() {
        return Err(NnError::OnnxSpec(format!(
            "the network has {} inputs but the spec names {} ({})",
            network.n_inputs(),
            spec.input_names.len(),
            spec.input_names.join(", ")
        )));
    }
    // Tensor names the graph uses internally; user names must not shadow them.
    let mut taken: HashSet<String> = HashSet::from(["features".to_string()]);
    for i in 0..network.layers().len() {
        let name = layer_name(i);
        for suffix in ["kernel", "bias", "gemm", "relu", "softmax"] {
            taken.insert(format!("{name}/{suffix}"));
        }
    }
    for (what, name) in spec.input_names.iter().map(|n| ("input", n)).chain([("output", &spec.output_name)]) {
        if name.is_empty() {
            return Err(NnError::OnnxSpec(format!("an {what} name is empty")));
        }
        if !taken.insert(name.clone()) {
            return Err(NnError::OnnxSpec(format!(
                "{what} name `{name}` is used twice or clashes with an internal tensor name"
            )));
        }
    }
    let mut keys = HashSet::new();
    if let Some((key, _)) = spec.metadata.iter().find(|(key, _)| !keys.insert(key.as_str())) {
        return Err(NnError::OnnxSpec(format!("metadata key `{key}` appears twice")));
    }
    Ok(())
}

/// A float tensor value info of shape `[batch, second]`.
fn float_value_info(name: &str, second: Dimension) -> ValueInfoProto {
    let batch = Dimension { value: Some(dimension::Value::DimParam(BATCH_DIM.into())), ..Default::default() };
    let tensor = type_proto::Tensor {
        elem_type: DataType::FLOAT as i32,
        shape: MessageField::some(TensorShapeProto { dim: vec![batch, second], ..Default::default() }),
        ..Default::default()
    };
    ValueInfoProto {
        name: name.into(),
        type_: MessageField::some(TypeProto {
            value: Some(type_proto::Value::TensorType(tensor)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An initializer with little-endian `raw_data`, the compact encoding runtimes read fastest.
fn float_tensor(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: DataType::FLOAT as i32,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn node(name: &str, op_type: &str, inputs: Vec<String>, output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        name: name.into(),
        op_type: op_type.into(),
        input: inputs,
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

fn int_attribute(name: &str, value: i64) -> AttributeProto {
    AttributeProto { name: name.into(), type_: EnumOrUnknown::new(AttributeType::INT), i: value, ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(n: usize) -> OnnxSpec {
        OnnxSpec::new("test", (0..n).map(|i| format!("f{i}")))
    }

    #[test]
    fn graph_structure_follows_the_layers() {
        let network = Network::workshop(3, 4, 0);
        let mut spec = spec(3);
        spec.metadata = vec![("features".into(), "f0,f1,f2".into()), ("classes".into(), "a,b,c,d".into())];
        let model = ModelProto::parse_from_bytes(&to_onnx_bytes(&network, &spec).unwrap()).unwrap();
        assert_eq!((model.ir_version, model.opset_import[0].version, model.producer_name.as_str()), (8, 17, "jukebox"));
        assert_eq!(model.metadata_props.iter().map(|p| p.key.as_str()).collect::<Vec<_>>(), ["features", "classes"]);
        let graph = model.graph.unwrap();
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["Concat", "Gemm", "Relu", "Gemm", "Relu", "Gemm", "Relu", "Gemm", "Relu", "Gemm", "Softmax"]);
        assert_eq!(graph.node.last().unwrap().output, ["output"]);
        assert_eq!(graph.input.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["f0", "f1", "f2"]);
        assert_eq!(graph.initializer.len(), 10);
        let kernel = &graph.initializer[8];
        assert_eq!((kernel.name.as_str(), kernel.dims.as_slice()), ("dense_5/kernel", &[256i64, 4][..]));
        let first: Vec<f32> =
            kernel.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        assert_eq!(first, network.layers()[4].weights());
    }

    #[test]
    fn identity_output_layer_names_the_gemm_output() {
        let network = Network::new(2, &[(3, Activation::Relu), (1, Activation::Identity)], 0);
        let model = to_model_proto(&network, &spec(2)).unwrap();
        let graph = model.graph.unwrap();
        let last = graph.node.last().unwrap();
        assert_eq!((last.op_type.as_str(), last.output[0].as_str()), ("Gemm", "output"));
    }

    #[test]
    fn spec_mistakes_are_named() {
        let network = Network::workshop(3, 4, 0);
        let e = |s: &OnnxSpec| to_onnx_bytes(&network, s).unwrap_err().to_string();
        assert!(e(&spec(2)).contains("the network has 3 inputs but the spec names 2 (f0, f1)"));
        let mut twice = spec(3);
        twice.input_names[2] = "f0".into();
        assert!(e(&twice).contains("input name `f0` is used twice"));
        let mut clash = spec(3);
        clash.output_name = "dense_1/kernel".into();
        assert!(e(&clash).contains("output name `dense_1/kernel`"));
        let mut keys = spec(3);
        keys.metadata = vec![("k".into(), "1".into()), ("k".into(), "2".into())];
        assert!(e(&keys).contains("metadata key `k` appears twice"));
    }
}
