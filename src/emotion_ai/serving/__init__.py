"""Serving, in layers: servables and version policy (`servables`), request formats (`face_requests`,
`json_arrays`), batching, the TF Serving REST protocol (`rest`), metrics, the server's lifecycle
(`server`), every tie to KServe internals (`kserve_bridge`), and a small client.

May import: `emotion_ai.release.model_repository` (the layout it serves),
`emotion_ai.monitoring.request_log` (sampled requests) and the shared modules. Never modeling (no
training code in a server), steps or the CLI.
"""
