"""``tabnn serve``: saved models over HTTP, in the Open Inference Protocol (KServe, MLServer,
Triton) and MLflow's scoring format.

- ``models``: the served models, loaded once, and what one prediction returns;
- ``oip`` and ``mlflow_format``: each protocol's requests read into a table, its answers;
- ``limits``: the queue, the time limit and the micro-batches predictions run under;
- ``middleware``: what every request passes (key, body size, metrics, access log);
- ``metrics``: the Prometheus metrics; ``onnx_runtime``: ``--runtime onnx``;
- ``app``: the FastAPI app over all of them (``create_app``).

Nothing here is imported by ``import tabnn``: FastAPI loads only when a server starts.
"""
