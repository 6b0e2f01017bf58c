"""The harness itself: a gateway whose port another process took between free_port() and the
gateway's bind is started again elsewhere, and is never mistaken for the process that has the port."""
from __future__ import annotations

import http.server
import threading

import conftest
from conftest import Gateway


class Impostor(http.server.ThreadingHTTPServer):
    """Something else on the port, answering 200 to everything (as another gateway would)."""

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_a_taken_port_is_retried_and_never_mistaken_for_the_gateway(fake, monkeypatch):
    impostor = Impostor()
    picks = iter([impostor.port, impostor.port])
    real_free_port = conftest.free_port
    monkeypatch.setattr(conftest, "free_port", lambda: next(picks, None) or real_free_port())
    gw = Gateway("openai", fake)
    try:
        gw.start()
        assert gw.port != impostor.port
        assert gw.log().count(f"cannot listen on 127.0.0.1:{impostor.port}: Address already in use") == 2
        assert f"Listening on 127.0.0.1:{gw.port}" in gw.log()
        assert gw.get("/health").json()["layers"]["l3"]["provider"] == "openai"  # the gateway, not the impostor
        assert gw.stop() == 0
    finally:
        gw.cleanup()
        impostor.shutdown()
        impostor.server_close()
