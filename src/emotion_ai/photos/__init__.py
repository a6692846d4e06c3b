"""Photos and video: face detection (`detection`), alignment to the training data's framing
(`alignment`), decoding photos (`images`), the per-face answer (`analysis`), drawing it
(`drawing`) and following faces through a video (`video`).

May import: `emotion_ai.data` and the shared modules. Never modeling, release, steps, serving or
the CLI: it takes the models' inference as a function, so the server and `emotion-ai predict` run
the same code on their own engines.
"""
