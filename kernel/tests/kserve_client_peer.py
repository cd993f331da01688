"""KServe's own v2 REST client (kserve.InferenceRESTClient, in .venv-kserve) as a peer of our model
server: server ready, model ready, then one inference of the given scaled values
(13 FP32 inputs of shape [1, 1]).

    .venv-kserve/bin/python kserve_client_peer.py URL VALUES_JSON

VALUES_JSON: {"<input name>": value, ...}. Prints one JSON line: {"ready", "model_ready",
"model_version", "probabilities"}; a failure of the client exits non-zero with its
message.
"""
import asyncio
import json
import sys

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest
from kserve.inference_client import RESTConfig


async def main(url, values):
    client = InferenceRESTClient(config=RESTConfig(protocol="v2"))
    try:
        inputs = []
        for name, value in values.items():
            tensor = InferInput(name=name, shape=[1, 1], datatype="FP32")
            tensor.set_data_from_numpy(np.array([[value]], dtype=np.float32))
            inputs.append(tensor)
        # The client names no version (it has no parameter for one): the server's default answers.
        answer = await client.infer(url, InferRequest(model_name="jukebox", infer_inputs=inputs), model_name="jukebox")
        result = {
            "ready": await client.is_server_ready(url),
            "model_ready": await client.is_model_ready(url, "jukebox"),
            "model_version": answer.model_version,
            "probabilities": answer.outputs[0].as_numpy().astype(float).ravel().tolist(),
        }
    finally:
        await client.close()
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))
