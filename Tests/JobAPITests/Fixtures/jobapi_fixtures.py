"""Encode and check jobworker.v1 messages with Python protobuf, for the JobAPI interop tests.

Usage:
  jobapi_fixtures.py emit OUTPUT.json
      Write {case name: hex of the Python encoding} for every case.
  jobapi_fixtures.py check INPUT.json OUTPUT.json
      Read {case name: hex} produced by Swift, parse each as its case's message type and write
      {case name: null when it equals the Python case, else a description of the mismatch}.

proto/jobworker/v1/jobworker.proto is compiled with grpc_tools.protoc into a temporary
directory on each run, so the test always checks the checked-in contract.
"""

import importlib
import json
import os
import sys
import tempfile

from grpc_tools import protoc

PROTO_ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../proto"))


def load_module():
    out_dir = tempfile.mkdtemp(prefix="jobapi-fixtures-")
    status = protoc.main([
        "protoc", f"-I{PROTO_ROOT}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}",
        "jobworker/v1/jobworker.proto",
    ])
    if status != 0:
        sys.exit(f"protoc failed on jobworker/v1/jobworker.proto with status {status}")
    sys.path.insert(0, out_dir)
    return importlib.import_module("jobworker.v1.jobworker_pb2")


def cases(pb):
    """Return {name: message}; the Swift tests build the same values under the same names."""
    exited = pb.JobStatus(
        job_id="job-1", state=pb.JOB_STATE_EXITED, exit_code=3, owner="alice", command="/bin/sh",
        args=["-c", "exit 3"], started_at=1_700_000_000_123_456_789, ended_at=1_700_000_001_000_000_000,
        resources=pb.ResourceConfig(cpu_quota="50%", memory_limit="256M", disk_io="10MB/s", max_pids=64),
        usage=pb.ResourceUsage(
            cpu_time_ns=12_345_678, memory_peak_bytes=4 << 20, io_read_bytes=4096, io_write_bytes=8192,
            oom_kill_count=0,
        ),
        exit_reason="exited with status 3", working_directory="/tmp",
    )
    killed = pb.JobStatus(
        job_id="job-2", state=pb.JOB_STATE_STOPPED, signal=9, oom_killed=True, owner="bob", command="sleep",
        args=["1000"], started_at=1, ended_at=2, usage=pb.ResourceUsage(oom_kill_count=1),
    )
    running = pb.JobStatus(job_id="job-3", state=pb.JOB_STATE_RUNNING, owner="alice", command="yes", started_at=5)

    start_full = pb.StartRequest(
        name="/usr/bin/env", args=["", "a b", "\u00fcnicode", "--flag=1"],
        resources=pb.ResourceConfig(cpu_quota="150%", memory_limit="1G", disk_io="", max_pids=0),
        working_directory="/srv/work",
    )
    start_full.env.update({"PATH": "/usr/bin:/bin", "EMPTY": "", "LANG": "C.UTF-8"})

    return {
        "start_minimal": pb.StartRequest(name="/bin/echo", args=["hello"]),
        "start_full": start_full,
        "start_empty_resources": pb.StartRequest(name="true", resources=pb.ResourceConfig()),
        "start_response": pb.StartResponse(job_id="0f8e2c1a-job"),
        "stop_request": pb.StopRequest(job_id="job-1"),
        "stop_response": pb.StopResponse(status=killed),
        "query_request": pb.QueryRequest(job_id="job-3"),
        "query_response": pb.QueryResponse(status=running),
        "list_request": pb.ListRequest(),
        "list_response": pb.ListResponse(jobs=[exited, killed, running, pb.JobStatus()]),
        "stream_request": pb.StreamRequest(job_id="job-1"),
        "stream_stdout": pb.StreamResponse(data=bytes(range(256)) * 256, stream=pb.OUTPUT_STREAM_STDOUT),
        "stream_stderr_small": pb.StreamResponse(data=b"\x00err\n", stream=pb.OUTPUT_STREAM_STDERR),
        "stream_final": pb.StreamResponse(final_status=exited),
        "status_unknown_enums": pb.StreamResponse(stream=7, final_status=pb.JobStatus(state=42)),
    }


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
        message_type = type(expected[name])
        try:
            parsed = message_type.FromString(bytes.fromhex(hex_bytes))
        except Exception as error:  # The report names whatever Python protobuf rejected.
            results[name] = f"python protobuf failed to parse {message_type.__name__}: {error}"
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
