#!/usr/bin/env python3
"""A kerno plugin in Python that uses only `proto/` and grpcio.

It reconciles the custom resource `Greeting` (group `example.kerno.dev`,
version `v1`): for each Greeting it keeps a ConfigMap `greeting-<name>` in the
same namespace whose `data.message` is "Hello, <spec.to>!", and records the
message in the Greeting's `status.message`.

What every kerno plugin does, in the order this file does it:
1. read the environment the supervisor sets (KERNO_KERNEL_ADDR, KERNO_CA_FILE,
   KERNO_TOKEN or a client certificate, KERNO_PLUGIN_NAME, KERNO_PLUGIN_CONFIG,
   KERNO_PLUGIN_SOCKET_DIR);
2. serve `kerno.plugin.v1.Plugin` (Health, Shutdown) on a unix socket, or on a
   loopback TCP port when no socket dir is given;
3. print the handshake line `KERNO_PLUGIN 1 <endpoint>` on stdout, and only
   that (logs go to stderr);
4. register with the kernel's PluginRegistry and heartbeat;
5. do its work: list+watch Greetings through `kerno.kernel.v1.Kernel`.

The stubs (`kerno/plugin/v1/plugin_pb2*.py`, `kerno/kernel/v1/kernel_pb2*.py`)
are generated from `proto/` with `python3 -m grpc_tools.protoc` into a
directory named by KERNO_PY_STUBS (or next to this file); see README.md.
"""

import json
import os
import signal
import sys
import threading
import time
from concurrent import futures

sys.path.insert(0, os.environ.get("KERNO_PY_STUBS", os.path.dirname(os.path.abspath(__file__))))

import grpc  # noqa: E402
from kerno.kernel.v1 import kernel_pb2, kernel_pb2_grpc  # noqa: E402
from kerno.plugin.v1 import plugin_pb2, plugin_pb2_grpc  # noqa: E402

PROTOCOL_VERSION = 1
GREETINGS = dict(group="example.kerno.dev", version="v1", resource="greetings")
CONFIGMAPS = dict(group="", version="v1", resource="configmaps")


def log(message):
    print(f"greeter: {message}", file=sys.stderr, flush=True)


def kernel_channel():
    """A TLS channel to the kernel, authenticated by token or client certificate."""
    addr = os.environ["KERNO_KERNEL_ADDR"]
    with open(os.environ["KERNO_CA_FILE"], "rb") as f:
        ca = f.read()
    cert = key = None
    if os.environ.get("KERNO_CLIENT_CERT_FILE"):
        with open(os.environ["KERNO_CLIENT_CERT_FILE"], "rb") as f:
            cert = f.read()
        with open(os.environ["KERNO_CLIENT_KEY_FILE"], "rb") as f:
            key = f.read()
    creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    token = os.environ.get("KERNO_TOKEN")
    if token:
        # The token travels as `authorization: Bearer <token>` on every call.
        bearer = grpc.metadata_call_credentials(
            lambda _ctx, callback: callback((("authorization", f"Bearer {token}"),), None)
        )
        creds = grpc.composite_channel_credentials(creds, bearer)
    # The kernel's certificate names `localhost`; loopback addresses are checked against it.
    server_name = os.environ.get("KERNO_TLS_SERVER_NAME", "localhost")
    return grpc.secure_channel(addr, creds, options=[("grpc.ssl_target_name_override", server_name)])


class PluginService(plugin_pb2_grpc.PluginServicer):
    """Health and Shutdown, which the kernel's supervisor calls."""

    def __init__(self, stop):
        self.stop = stop

    def Health(self, request, context):
        return plugin_pb2.HealthResponse(status=plugin_pb2.HealthResponse.SERVING_STATUS_SERVING)

    def Shutdown(self, request, context):
        self.stop.set()
        return plugin_pb2.ShutdownResponse()


def serve_plugin(stop):
    """Serves the Plugin service and returns (server, endpoint)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    plugin_pb2_grpc.add_PluginServicer_to_server(PluginService(stop), server)
    socket_dir = os.environ.get("KERNO_PLUGIN_SOCKET_DIR")
    if socket_dir:
        path = os.path.join(socket_dir, os.environ["KERNO_PLUGIN_NAME"] + ".sock")
        if os.path.exists(path):
            os.unlink(path)
        server.add_insecure_port(f"unix://{path}")
        endpoint = f"unix://{path}"
    else:
        port = server.add_insecure_port("127.0.0.1:0")
        endpoint = f"tcp://127.0.0.1:{port}"
    server.start()
    return server, endpoint


def register(channel, name, endpoint):
    """Registers with the kernel, retrying while it is unreachable; returns the heartbeat interval."""
    registry = plugin_pb2_grpc.PluginRegistryStub(channel)
    request = plugin_pb2.RegisterRequest(
        name=name,
        kind="controller",
        version="0.1.0",
        protocol_versions=[PROTOCOL_VERSION],
        capabilities=["reconcile:greetings.example.kerno.dev"],
        endpoint=endpoint,
    )
    while True:
        try:
            return registry.Register(request, timeout=5).heartbeat_interval_seconds or 10
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.UNAVAILABLE:
                # A refusal (for example no shared protocol version) is final.
                raise SystemExit(f"greeter: the kernel refused the plugin: {err.details()}")
            time.sleep(0.5)


def heartbeat(channel, name, interval, stop):
    registry = plugin_pb2_grpc.PluginRegistryStub(channel)
    while not stop.wait(interval):
        try:
            registry.Heartbeat(plugin_pb2.HeartbeatRequest(name=name), timeout=5)
        except grpc.RpcError as err:
            log(f"heartbeat failed: {err.code().name} {err.details()}")


def ref(kind, namespace="", name=""):
    return kernel_pb2.ResourceRef(namespace=namespace, name=name, **kind)


def reconcile(kernel, greeting):
    """Makes the ConfigMap and the status match one Greeting."""
    meta = greeting["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    message = f"Hello, {greeting.get('spec', {}).get('to', 'world')}!"
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"greeting-{name}",
            "namespace": namespace,
            # Owned by the Greeting, so deleting it deletes the ConfigMap (garbage collection).
            "ownerReferences": [
                {
                    "apiVersion": "example.kerno.dev/v1",
                    "kind": "Greeting",
                    "name": name,
                    "uid": meta["uid"],
                    "controller": True,
                }
            ],
        },
        "data": {"message": message},
    }
    # Server-side apply creates or updates in one call and owns only our fields.
    kernel.Patch(
        kernel_pb2.PatchRequest(
            resource=ref(CONFIGMAPS, namespace, configmap["metadata"]["name"]),
            patch_type=kernel_pb2.PATCH_TYPE_APPLY,
            patch=json.dumps(configmap).encode(),
            field_manager="greeter",
            force=True,
        ),
        timeout=10,
    )
    if greeting.get("status", {}).get("message") != message:
        kernel.Patch(
            kernel_pb2.PatchRequest(
                resource=ref(GREETINGS, namespace, name),
                patch_type=kernel_pb2.PATCH_TYPE_MERGE,
                patch=json.dumps({"status": {"message": message}}).encode(),
                subresource="status",
            ),
            timeout=10,
        )
    log(f"reconciled {namespace}/{name}: {message}")


def run_controller(channel, stop):
    """List, then watch from the list's revision; relist when the watch ends or expires."""
    kernel = kernel_pb2_grpc.KernelStub(channel)
    while not stop.is_set():
        try:
            listed = kernel.List(kernel_pb2.ListRequest(resource=ref(GREETINGS)), timeout=10)
            for item in listed.items:
                reconcile(kernel, json.loads(item))
            events = kernel.Watch(
                kernel_pb2.WatchRequest(resource=ref(GREETINGS), resource_version=listed.resource_version)
            )
            stop_watch = threading.Thread(target=lambda: (stop.wait(), events.cancel()), daemon=True)
            stop_watch.start()
            for event in events:
                if event.type in ("ADDED", "MODIFIED"):
                    reconcile(kernel, json.loads(event.object))
                elif event.type == "ERROR":
                    log(f"watch error: {event.object.decode()}")
                    break
        except grpc.RpcError as err:
            if stop.is_set():
                return
            # NOT_FOUND: the CRD is not there yet. Anything else: the kernel restarts or is busy.
            log(f"{err.code().name}: {err.details()}; retrying")
            stop.wait(1)


def main():
    name = os.environ.get("KERNO_PLUGIN_NAME", "greeter")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    server, endpoint = serve_plugin(stop)
    print(f"KERNO_PLUGIN {PROTOCOL_VERSION} {endpoint}", flush=True)

    channel = kernel_channel()
    interval = register(channel, name, endpoint)
    log(f"registered as {name}, heartbeat every {interval}s")
    threading.Thread(target=heartbeat, args=(channel, name, interval, stop), daemon=True).start()
    worker = threading.Thread(target=run_controller, args=(channel, stop), daemon=True)
    worker.start()

    stop.wait()
    server.stop(grace=2).wait()
    log("stopped")


if __name__ == "__main__":
    main()
