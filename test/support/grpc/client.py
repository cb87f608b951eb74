#!/usr/bin/python3
"""A gRPC client driver on Debian's python3-grpcio (generic raw-bytes stubs, no protoc).

Usage: client.py --target 127.0.0.1:PORT [--authority greeter] PLAN_JSON
PLAN_JSON is a list of calls; each call:
  {"kind": "unary" | "server_stream" | "client_stream" | "bidi",
   "method": "/weft.test.Echo/Unary",
   "request": <JSON doc> (unary, server_stream) | "requests": [<JSON doc>, ...] (client_stream, bidi),
   "timeout": seconds (optional), "metadata": {"k": "v"} (optional), "repeat": n (optional, default 1)}
Prints one JSON document on stdout: a list with one result per call made (repeats included):
  {"method", "kind", "code": "OK" | status name, "details", "responses": [<JSON doc>, ...],
   "initial": {...}, "trailing": {...}, "elapsed_ms"}
All calls share one channel (one HTTP/2 connection), made in order.
"""
import argparse
import json
import sys
import time

import grpc


def as_dict(metadata):
    out = {}
    for k, v in metadata or ():
        out[k] = v.decode("latin-1") if isinstance(v, bytes) else v
    return out


def enc(doc):
    return json.dumps(doc).encode()


def dec(raw):
    try:
        return json.loads(raw)
    except ValueError:
        return {"raw": raw.decode("latin-1")}


def run_call(channel, call):
    kind = call["kind"]
    method = call["method"]
    kwargs = {}
    if "timeout" in call:
        kwargs["timeout"] = call["timeout"]
    if call.get("metadata"):
        kwargs["metadata"] = tuple(call["metadata"].items())
    responses = []
    result = {"method": method, "kind": kind}
    start = time.monotonic()
    rpc = None
    try:
        if kind == "unary":
            response, rpc = channel.unary_unary(method).with_call(enc(call.get("request", {})), **kwargs)
            responses.append(dec(response))
        elif kind == "client_stream":
            requests = iter([enc(r) for r in call.get("requests", [])])
            response, rpc = channel.stream_unary(method).with_call(requests, **kwargs)
            responses.append(dec(response))
        elif kind == "server_stream":
            rpc = channel.unary_stream(method)(enc(call.get("request", {})), **kwargs)
            for r in rpc:
                responses.append(dec(r))
        elif kind == "bidi":
            rpc = channel.stream_stream(method)(iter([enc(r) for r in call.get("requests", [])]), **kwargs)
            for r in rpc:
                responses.append(dec(r))
        else:
            raise ValueError("unknown kind %r" % kind)
        result["code"] = rpc.code().name
        result["details"] = rpc.details() or ""
        result["initial"] = as_dict(rpc.initial_metadata())
        result["trailing"] = as_dict(rpc.trailing_metadata())
    except grpc.RpcError as err:
        result["code"] = err.code().name
        result["details"] = err.details() or ""
        result["initial"] = as_dict(err.initial_metadata())
        result["trailing"] = as_dict(err.trailing_metadata())
    result["responses"] = responses
    result["elapsed_ms"] = round((time.monotonic() - start) * 1000, 1)
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--authority", default="")
    parser.add_argument("plan")
    args = parser.parse_args()
    options = [("grpc.enable_retries", 0)]
    if args.authority:
        options.append(("grpc.default_authority", args.authority))
    results = []
    with grpc.insecure_channel(args.target, options=options) as channel:
        for call in json.loads(args.plan):
            for _ in range(call.get("repeat", 1)):
                results.append(run_call(channel, call))
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
