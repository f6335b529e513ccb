"""The suite's own destinations, run inside a container on the "upstream" network.

Serves the folder given as argv[1] over HTTP on 8000 and over HTTPS on 8443
(certificate and key in that folder), plus `/big`, 10 MiB of zeros, streamed.
Standard library only: it runs on the runtime image's Python.
"""

from __future__ import annotations

import functools
import http.server
import ssl
import sys
import threading

BIG = 10 * 1024 * 1024
CHUNK = 64 * 1024


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Length", str(BIG))
            self.end_headers()
            for _ in range(BIG // CHUNK):
                self.wfile.write(bytes(CHUNK))
            return
        super().do_GET()


def serve(port: int, folder: str, tls: bool) -> None:
    handler = functools.partial(Handler, directory=folder)
    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), handler)
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(f"{folder}/../tls/cert.pem", f"{folder}/../tls/key.pem")
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    root = sys.argv[1]
    threading.Thread(target=serve, args=(8443, f"{root}/www", True), daemon=True).start()
    serve(8000, f"{root}/www", False)
