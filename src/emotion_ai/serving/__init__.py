"""Serving, in layers: servables and version policy (`servables`, `catalog`), one loaded version
(`versions`), inference engines (`engines`: OpenVINO or TensorFlow), photos (`photo_servable`),
request formats (`face_requests`, `json_arrays`), batching, the protocols (`rest` for TF Serving's
REST, `grpc_api` for its gRPC, `open_inference` for KServe's V2), metrics, the server's lifecycle
(`server`), the pre-promotion check's serving side (`infra_validation`), every tie to KServe
internals (`kserve_bridge`), and a small client.

May import: `emotion_ai.release.model_repository` (the layout it serves),
`emotion_ai.release.warmup` (the warm-up requests in each export), `emotion_ai.photos` (detection
and alignment), `emotion_ai.monitoring.request_log` (sampled requests) and the shared modules.
Never modeling (no training code in a server), steps or the CLI.
"""
