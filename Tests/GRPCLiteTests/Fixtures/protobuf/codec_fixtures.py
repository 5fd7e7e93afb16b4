"""Encode and check the codec_test.proto cases with Python protobuf, for the Swift interop tests.

Usage:
  codec_fixtures.py emit OUTPUT.json
      Write {case name: hex of the Python encoding} for every case.
  codec_fixtures.py check INPUT.json OUTPUT.json
      Read {case name: hex} produced by Swift, parse each with Python protobuf and write
      {case name: null when it equals the Python case, else a description of the mismatch}.

The .proto is compiled with grpc_tools.protoc into a temporary directory on each run, so
the test always uses the checked-in .proto.
"""

import importlib
import json
import os
import sys
import tempfile

from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))


def load_module():
    out_dir = tempfile.mkdtemp(prefix="codec-fixtures-")
    status = protoc.main(["protoc", f"-I{HERE}", f"--python_out={out_dir}", "codec_test.proto"])
    if status != 0:
        sys.exit(f"protoc failed on codec_test.proto with status {status}")
    sys.path.insert(0, out_dir)
    return importlib.import_module("codec_test_pb2")


def cases(pb):
    """Return {name: message}; the Swift tests build the same values under the same names."""
    result = {"empty": pb.AllKinds()}

    result["positive_scalars"] = pb.AllKinds(
        f_int32=150, f_int64=1 << 40, f_uint32=300, f_uint64=1 << 63, f_sint32=63, f_sint64=1 << 50,
        f_fixed32=0xDEADBEEF, f_fixed64=0x0123456789ABCDEF, f_sfixed32=7, f_sfixed64=1 << 60,
        f_bool=True, f_float=1.5, f_double=3.141592653589793, f_enum=pb.COLOR_GREEN,
    )

    result["negative_scalars"] = pb.AllKinds(
        f_int32=-1, f_int64=-(1 << 63), f_sint32=-(1 << 31), f_sint64=-(1 << 63), f_sfixed32=-2,
        f_sfixed64=-3, f_float=-0.25, f_double=-1e300,
    )

    result["extreme_scalars"] = pb.AllKinds(
        f_int32=(1 << 31) - 1, f_int64=(1 << 63) - 1, f_uint32=(1 << 32) - 1, f_uint64=(1 << 64) - 1,
        f_sint32=(1 << 31) - 1, f_sint64=(1 << 63) - 1, f_fixed32=(1 << 32) - 1, f_fixed64=(1 << 64) - 1,
        f_sfixed32=-(1 << 31), f_sfixed64=-(1 << 63), f_float=-0.0, f_double=5e-324,
    )

    result["strings_and_bytes"] = pb.AllKinds(
        f_string="h\u00e9llo, \u4e16\u754c \U0001F680",
        f_bytes=bytes([0x00, 0xFF, 0x80, 0x7F, 0x0A]),
        f_max_field="last",
    )

    # 70000 bytes need a three-byte length prefix.
    result["large_bytes"] = pb.AllKinds(f_bytes=bytes(i % 251 for i in range(70000)))

    result["nested"] = pb.AllKinds(
        f_inner=pb.Inner(id=1, label="a" * 200, child=pb.Inner(id=2, child=pb.Inner(label="leaf"))),
        # An enum number without a name stays a number in proto3.
        f_enum=7,
    )

    result["empty_nested"] = pb.AllKinds(f_inner=pb.Inner())

    result["repeated"] = pb.AllKinds(
        r_int32=[0, 1, -1, 150, (1 << 31) - 1, -(1 << 31)],
        r_int32_unpacked=[3, -270, 86942],
        r_int64=[-(1 << 63), 0, (1 << 63) - 1],
        r_uint32=[0, (1 << 32) - 1],
        r_uint64=[1, (1 << 64) - 1],
        r_sint32=[-1, 1, -64, 64],
        r_sint64=[-(1 << 63), (1 << 63) - 1],
        r_fixed32=[1, 0xFFFFFFFF],
        r_fixed64=[2, 0xFFFFFFFFFFFFFFFF],
        r_sfixed32=[-1, 1],
        r_sfixed64_unpacked=[-5, 5],
        r_bool=[True, False, True],
        r_float=[0.5, -2.0],
        r_double_unpacked=[1.25, -0.0],
        r_enum=[pb.COLOR_RED, pb.COLOR_UNSPECIFIED, 9],
        r_string=["", "one", "tw\u00f6"],
        r_bytes=[b"", b"\x00\x01"],
        r_inner=[pb.Inner(id=1), pb.Inner(), pb.Inner(label="x")],
    )

    maps = pb.AllKinds()
    maps.m_string.update({"PATH": "/usr/bin:/bin", "": "empty key", "EMPTY": "", "\u00fc": "\u00e9"})
    maps.m_int32.update({"a": 1, "minus": -5, "zero": 0})
    result["maps"] = maps

    return result


def emit(pb, output_path):
    encoded = {name: message.SerializeToString(deterministic=True).hex() for name, message in cases(pb).items()}
    with open(output_path, "w") as output:
        json.dump(encoded, output)


def check(pb, input_path, output_path):
    with open(input_path) as source:
        received = json.load(source)
    expected = cases(pb)
    results = {}
    for name, hex_bytes in received.items():
        if name not in expected:
            results[name] = f"unknown case {name!r}"
            continue
        try:
            parsed = pb.AllKinds.FromString(bytes.fromhex(hex_bytes))
        except Exception as error:  # The report names whatever Python protobuf rejected.
            results[name] = f"python protobuf failed to parse: {error}"
            continue
        if parsed == expected[name]:
            results[name] = None
        else:
            results[name] = f"expected:\n{expected[name]}\nparsed:\n{parsed}"
    with open(output_path, "w") as output:
        json.dump(results, output)


def main():
    pb = load_module()
    if len(sys.argv) == 3 and sys.argv[1] == "emit":
        emit(pb, sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "check":
        check(pb, sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
