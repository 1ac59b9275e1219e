"""The stand-in kit - what a real deployment has and a laptop lacks, for the demo, tests, benches.

A local Kafka broker and S3 API server (dev/), synthetic card traffic (synthetic), a stand-in
live service (live_service), reference and tiny ONNX models, a sample prediction store. The
shared core and the stages never import it (tests/unit/test_layers.py).
"""
