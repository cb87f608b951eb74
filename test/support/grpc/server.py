#!/usr/bin/python3
"""A gRPC test server built on Debian's python3-grpcio (no protoc: raw-bytes generic handlers).

Service `weft.test.Echo`, every message a UTF-8 JSON document:
  Unary(req)             -> {"server": name, "echo": req, "metadata": {...}, "deadline_ms": ms left or null}
  ServerStream({"count": n})  -> n messages {"server": name, "i": i}
  ClientStream(msgs...)  -> {"server": name, "count": len(msgs), "echo": [msgs...]}
  Bidi(msgs...)          -> one {"server": name, "echo": msg} per msg, as they arrive
  Fail({"code": "NOT_FOUND", "message": "...", "trailers": {"x-detail": "abc"}})
                         -> that status, message and trailing metadata (Trailers-Only)
  StreamFail({"count": n, "code": ..., "message": ..., "trailers": {...}})
                         -> n messages, then that status and trailing metadata in trailers
  Sleep({"ms": n})       -> waits n ms, answering {"server": name, "slept_ms": n}, unless the call is
                            cancelled first (deadline or client gone): then prints a "cancelled" event
With --fail-with CODE every call fails at once with CODE (e.g. UNAVAILABLE), Trailers-Only.

Usage: server.py --port 0 --name a [--fail-with UNAVAILABLE]
Prints JSON lines on stdout: {"event": "ready", "port": p} once serving, then
{"event": "call", "method": m, "metadata": {...}} per call and {"event": "cancelled", "method": m}.
Exits on SIGTERM / SIGINT.
"""
import argparse
import json
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

SERVICE = "weft.test.Echo"


def emit(event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--name", default="server")
    parser.add_argument("--fail-with", default="")
    args = parser.parse_args()
    name = args.name
    fail_with = getattr(grpc.StatusCode, args.fail_with) if args.fail_with else None

    def seen(method, context):
        emit({"event": "call", "method": method, "metadata": dict(context.invocation_metadata())})
        if fail_with is not None:
            context.abort(fail_with, "%s always fails with %s" % (name, fail_with.name))

    def reply(doc):
        return json.dumps(doc).encode()

    def unary(request, context):
        seen("Unary", context)
        left = context.time_remaining()
        return reply({
            "server": name,
            "echo": json.loads(request),
            "metadata": dict(context.invocation_metadata()),
            "deadline_ms": None if left is None else round(left * 1000),
        })

    def server_stream(request, context):
        seen("ServerStream", context)
        for i in range(json.loads(request).get("count", 1)):
            yield reply({"server": name, "i": i})

    def client_stream(requests, context):
        seen("ClientStream", context)
        msgs = [json.loads(r) for r in requests]
        return reply({"server": name, "count": len(msgs), "echo": msgs})

    def bidi(requests, context):
        seen("Bidi", context)
        for r in requests:
            yield reply({"server": name, "echo": json.loads(r)})

    def fail(request, context):
        seen("Fail", context)
        doc = json.loads(request)
        context.set_trailing_metadata(tuple((k, v) for k, v in doc.get("trailers", {}).items()))
        context.abort(getattr(grpc.StatusCode, doc["code"]), doc.get("message", ""))

    def stream_fail(request, context):
        seen("StreamFail", context)
        doc = json.loads(request)
        for i in range(doc.get("count", 1)):
            yield reply({"server": name, "i": i})
        context.set_trailing_metadata(tuple((k, v) for k, v in doc.get("trailers", {}).items()))
        context.abort(getattr(grpc.StatusCode, doc["code"]), doc.get("message", ""))

    def sleep(request, context):
        seen("Sleep", context)
        ms = json.loads(request).get("ms", 1000)
        done = threading.Event()
        context.add_callback(done.set)
        # Returns early when the RPC terminates (cancelled, deadline): that is what is reported.
        if done.wait(ms / 1000.0) or not context.is_active():
            emit({"event": "cancelled", "method": "Sleep"})
            return reply({"server": name, "cancelled": True})
        return reply({"server": name, "slept_ms": ms})

    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
        "StreamFail": grpc.unary_stream_rpc_method_handler(stream_fail),
        "Sleep": grpc.unary_unary_rpc_method_handler(sleep),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:%d" % args.port)
    server.start()
    emit({"event": "ready", "port": port, "name": name})

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    server.stop(0.5).wait()


if __name__ == "__main__":
    main()
