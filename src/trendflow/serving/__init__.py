"""Model serving on Triton (SPEC 12): server lifecycle, gRPC client, model build and resolution.

Neural components never run a model in-process: they call the Triton server through
`trendflow.serving.client.TritonClient`, and an unreachable server is `triton_unavailable`.
"""

from pathlib import Path

DEFAULT_REPOSITORY = Path(__file__).resolve().parents[3] / "serving" / "model_repository"
DEFAULT_GRPC_URL = "127.0.0.1:8001"
TRITON_URL_ENV = "TRENDFLOW_TRITON_URL"
