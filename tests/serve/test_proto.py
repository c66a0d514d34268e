"""The committed descriptor set matches the .proto, the messages live in a private pool, and
they agree with tritonclient's (the stock client) field by field and on the wire."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

from ladder.serve import proto
from ladder.serve.proto import DESCRIPTOR_SET, PROTO_FILE, SERVICE, messages

RPCS = ["ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer"]


def test_committed_descriptor_set_matches_the_proto(tmp_path: Path):
    protoc = pytest.importorskip("grpc_tools.protoc")
    out = tmp_path / "fresh.pb"
    folder = DESCRIPTOR_SET.parent
    code = protoc.main(["protoc", f"-I{folder}", f"--descriptor_set_out={out}", PROTO_FILE])
    assert code == 0
    fresh = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    committed = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())
    assert fresh == committed, (
        "grpc_predict_v2.pb is stale: rebuild it with the command at the top of the .proto"
    )


def test_service_and_field_numbers():
    service = proto.pool().FindServiceByName(SERVICE)
    assert [m.name for m in service.methods] == RPCS
    infer = service.FindMethodByName("ModelInfer")
    assert (infer.input_type.full_name, infer.output_type.full_name) == (
        "inference.ModelInferRequest",
        "inference.ModelInferResponse",
    )
    msgs = messages()
    request = msgs.ModelInferRequest.DESCRIPTOR.fields_by_name
    assert request["raw_input_contents"].number == 7 and request["outputs"].number == 6
    assert msgs.ModelInferResponse.DESCRIPTOR.fields_by_name["raw_output_contents"].number == 6
    contents = msgs.InferTensorContents.DESCRIPTOR.fields_by_name
    assert [contents[f"{k}_contents"].number for k in ("bool", "fp32", "bytes")] == [1, 6, 8]
    param = msgs.InferParameter.DESCRIPTOR.fields_by_name
    assert (param["double_param"].number, param["uint64_param"].number) == (4, 5)


def test_messages_stay_out_of_the_default_pool():
    msgs = messages()
    assert msgs is messages()  # cached
    assert msgs.ModelInferRequest.DESCRIPTOR.file.pool is proto.pool()
    with pytest.raises(KeyError):
        descriptor_pool.Default().FindFileByName(PROTO_FILE)


def _fields(descriptor) -> dict:
    """Every field (nested messages included) as (number, type, repeated, message type)."""
    result = {}
    for f in descriptor.fields:
        kind = f.message_type.full_name if f.message_type else None
        result[f"{descriptor.full_name}.{f.name}"] = (f.number, f.type, f.is_repeated, kind)
    for nested in descriptor.nested_types:
        result.update(_fields(nested))
    return result


def test_messages_agree_with_tritonclient():
    service_pb2 = pytest.importorskip("tritonclient.grpc.service_pb2")
    theirs = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    ours = proto.pool().FindServiceByName(SERVICE)
    for method in ours.methods:
        other = theirs.methods_by_name[method.name]
        for mine, stock in (
            (method.input_type, other.input_type),
            (method.output_type, other.output_type),
        ):
            assert mine.full_name == stock.full_name
            assert _fields(mine) == _fields(stock)
    for name in ("InferParameter", "InferTensorContents"):
        mine = proto.pool().FindMessageTypeByName(f"inference.{name}")
        assert _fields(mine) == _fields(service_pb2.DESCRIPTOR.message_types_by_name[name])


def test_tritonclient_request_parses_with_ours():
    service_pb2 = pytest.importorskip("tritonclient.grpc.service_pb2")
    stock = service_pb2.ModelInferRequest(model_name="m", model_version="1", id="r")
    tensor = stock.inputs.add(name="x", datatype="FP32", shape=[1, 2])
    tensor.parameters["p"].uint64_param = 9
    stock.outputs.add(name="label")
    stock.raw_input_contents.append(b"\0" * 8)
    mine = messages().ModelInferRequest.FromString(stock.SerializeToString())
    assert (mine.model_name, mine.model_version, mine.id) == ("m", "1", "r")
    assert list(mine.inputs[0].shape) == [1, 2]
    assert mine.inputs[0].parameters["p"].uint64_param == 9
    assert [o.name for o in mine.outputs] == ["label"]
    assert list(mine.raw_input_contents) == [b"\0" * 8]
