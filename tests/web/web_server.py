"""Helpers of the web app tests: run the real app with uvicorn on a free local port."""

import contextlib
import socket
import threading
import time


@contextlib.contextmanager
def serve(app):
    """Run ``app`` with uvicorn in a thread on a free port of 127.0.0.1; yield its base URL."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def make_app(model, **options):
    from medsam.segmentation import MedSAMSegmenter
    from medsam.web import create_app

    return create_app(lambda: MedSAMSegmenter(model), model_name="lite_medsam", **options)
