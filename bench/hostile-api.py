#!/usr/bin/env python3
# A hostile Events API on loopback: answers every POST 200 with a status array
# whose first item is a huge object (MODE=item, SIZE bytes), or with a body of
# SIZE bytes (MODE=body). For measuring the SDK's peak RSS (issue #14 rows 1, 6).
import http.server, os, sys
size = int(os.environ.get("SIZE", str(4 << 20)))
mode = os.environ.get("MODE", "item")
if mode == "item":
    body = b'[{"status":202,"x":"' + b"y" * size + b'"}' + b',{"status":202}' * 499 + b"]"
else:
    body = b"[" + b" " * size + b"]"
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except Exception:
            pass
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
