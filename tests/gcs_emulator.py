"""A local GCS for TensorFlow's own ``gs://`` filesystem: gcp-storage-emulator behind a TLS-intercepting proxy.

TensorFlow's GCS client has its endpoints compiled in (https://www.googleapis.com/storage/v1/,
.../upload/storage/v1/ and storage.googleapis.com) and reads no emulator variable, so it cannot be
pointed at 127.0.0.1 directly. Its libcurl does honour ``HTTPS_PROXY``/``http_proxy`` and
``CURL_CA_BUNDLE``, though. This module starts, inside the calling process:

* the PyPI ``gcp-storage-emulator`` (plain HTTP on 127.0.0.1, in memory, one bucket);
* a proxy that answers CONNECT for Google's storage host names with a certificate from a
  throw-away CA (``trustme``) and relays the decrypted bytes to the emulator, and forwards the
  plain-HTTP requests the emulator's own upload URLs lead to.

``environment()`` gives the variables a subprocess needs; nothing is set in this process, so
other tests' HTTP calls never meet the proxy. Real Google hosts are never contacted.
"""
import socket
import ssl
import threading

GOOGLE_HOSTS = ("www.googleapis.com", "storage.googleapis.com")


def _patch_emulator():
    """Two request-parsing fixes the emulator needs for TensorFlow's client (applied once)."""
    from gcp_storage_emulator import server

    if getattr(server, "_bert_tf_patched", False):
        return
    read_raw, read_data = server._read_raw_data, server._read_data

    def read_raw_data(handler):
        # TensorFlow's uploads carry both "Transfer-Encoding: chunked" and "Content-Length"; HTTP
        # says the chunked framing wins (RFC 9112, 6.3), the emulator would read the framing as data.
        if (handler.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            del handler.headers["Content-Length"]
        return read_raw(handler)

    def read_data_or_empty(handler, query):
        # The emulator turns an empty body into None and then fails on its length; TensorFlow
        # creates directories as empty objects ("dir/").
        data = read_data(handler, query)
        return b"" if data is None and query.get("uploadType") == ["media"] else data

    server._read_raw_data, server._read_data = read_raw_data, read_data_or_empty
    server._bert_tf_patched = True


def _close(*sockets):
    for sock in sockets:
        try:
            sock.close()
        except OSError:
            pass


def _copy(source, target):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    finally:
        try:
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class _Proxy:
    def __init__(self, upstream, context):
        self.upstream, self.context = upstream, context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client):
        upstream = None
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(65536)
                if not chunk:
                    return
                head += chunk
            line, _, rest = head.partition(b"\r\n")
            method, target, version = line.split(b" ", 2)
            upstream = socket.create_connection(self.upstream)
            if method == b"CONNECT":
                if target.split(b":")[0].decode() not in GOOGLE_HOSTS:
                    client.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")
                    return
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                client = self.context.wrap_socket(client, server_side=True)
            else:
                # An absolute-form request (http://host/path) goes upstream in origin form (/path).
                path = b"/" + target.split(b"/", 3)[3] if target.startswith(b"http://") else target
                upstream.sendall(method + b" " + path + b" " + version + b"\r\n" + rest)
            sender = threading.Thread(target=_copy, args=(client, upstream), daemon=True)
            sender.start()
            _copy(upstream, client)
            sender.join(timeout=5)
        except (OSError, ValueError, IndexError):
            pass
        finally:
            _close(client, *([upstream] if upstream else []))

    def close(self):
        _close(self.listener)


class LocalGcs:
    """The emulator, its proxy and its CA; ``bucket`` exists and is empty at the start."""

    def __init__(self, directory, bucket="bert-tf-test"):
        import trustme
        from gcp_storage_emulator.server import create_server

        _patch_emulator()
        self.bucket = bucket
        probe = socket.create_server(("127.0.0.1", 0))
        self.emulator_port = probe.getsockname()[1]
        probe.close()
        self.server = create_server("127.0.0.1", self.emulator_port, in_memory=True, default_bucket=bucket)
        self.server.start()
        authority = trustme.CA()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        authority.issue_cert(*GOOGLE_HOSTS).configure_cert(context)
        self.directory = str(directory)
        self.ca_bundle = str(directory / "local_gcs_ca.pem")
        authority.cert_pem.write_to_path(self.ca_bundle)
        self.proxy = _Proxy(("127.0.0.1", self.emulator_port), context)

    def environment(self):
        """Variables that send a process's TensorFlow gs:// traffic here (and only here)."""
        proxy = f"http://127.0.0.1:{self.proxy.port}"
        return {"HTTPS_PROXY": proxy, "https_proxy": proxy, "http_proxy": proxy, "NO_PROXY": "", "no_proxy": "",
                "CURL_CA_BUNDLE": self.ca_bundle,
                # No credentials anywhere (an empty gcloud config, no key file, no GCE metadata):
                # TensorFlow then sends anonymous requests, which the emulator accepts.
                "NO_GCE_CHECK": "true", "GOOGLE_APPLICATION_CREDENTIALS": "", "CLOUDSDK_CONFIG": self.directory,
                "GCS_RETRY_CONFIG_MAX_RETRIES": "2"}

    def objects(self, prefix=""):
        """{name: size} of the bucket's objects under ``prefix``, read straight from the emulator."""
        import json
        import urllib.parse
        import urllib.request

        query = urllib.parse.urlencode({"prefix": prefix})
        url = f"http://127.0.0.1:{self.emulator_port}/storage/v1/b/{self.bucket}/o?{query}"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=30) as response:
            items = json.load(response).get("items", [])
        return {item["name"]: int(item["size"]) for item in items}

    def close(self):
        self.proxy.close()
        self.server.stop()
