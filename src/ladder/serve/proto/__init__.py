"""The Open Inference Protocol gRPC messages, built at runtime in a private descriptor pool.

`grpc_predict_v2.pb` is the compiled descriptor set of `grpc_predict_v2.proto` beside it. No
generated `_pb2` code: a private pool keeps these `inference.*` messages apart from those that
tritonclient (or any other stub) registers in protobuf's default pool, so both live in one
process.
"""

from __future__ import annotations

import functools
from pathlib import Path
from types import SimpleNamespace

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PROTO_FILE = "grpc_predict_v2.proto"
DESCRIPTOR_SET = Path(__file__).with_name("grpc_predict_v2.pb")
PACKAGE = "inference"
SERVICE = f"{PACKAGE}.GRPCInferenceService"


@functools.cache
def pool() -> descriptor_pool.DescriptorPool:
    """The private descriptor pool that holds the protocol's file."""
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())
    private = descriptor_pool.DescriptorPool()
    for file in files.file:
        private.Add(file)
    return private


@functools.cache
def messages() -> SimpleNamespace:
    """The protocol's message classes by short name (`messages().ModelInferRequest`).

    Nested messages are attributes of their parent, e.g.
    `messages().ModelInferRequest.InferInputTensor`.
    """
    classes = message_factory.GetMessageClassesForFiles([PROTO_FILE], pool())
    return SimpleNamespace(**{name.rpartition(".")[2]: cls for name, cls in classes.items()})
