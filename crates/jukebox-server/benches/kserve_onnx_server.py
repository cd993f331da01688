"""KServe's Python model server wrapping onnxruntime: the reference the jukebox model server is
compared against in compare_kserve.py. Same model file, same v2 REST protocol.

    .venv-kserve/bin/python kserve_onnx_server.py --model_dir ROOT/jukebox/1 --model_name jukebox --http_port PORT
"""
import argparse
import os

import kserve
import numpy as np
import onnxruntime as ort
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer, model_server


class OnnxModel(Model):
    def __init__(self, name: str, model_dir: str):
        super().__init__(name)
        self.model_dir = model_dir
        self.load()

    def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(os.path.join(self.model_dir, "model.onnx"), options,
                                            providers=["CPUExecutionProvider"])
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.ready = True
        return self.ready

    async def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        feeds = {i.name: i.as_numpy().astype(np.float32, copy=False) for i in payload.inputs}
        results = self.session.run(self.output_names, feeds)
        outputs = []
        for name, value in zip(self.output_names, results):
            out = InferOutput(name=name, shape=list(value.shape), datatype="FP32")
            out.set_data_from_numpy(value, binary_data=False)
            outputs.append(out)
        return InferResponse(response_id=payload.id or "", model_name=self.name, infer_outputs=outputs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_dir", required=True)
    args, _ = parser.parse_known_args()
    ModelServer(http_port=args.http_port, workers=1).start([OnnxModel(args.model_name, args.model_dir)])
