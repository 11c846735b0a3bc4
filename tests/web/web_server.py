"""Helpers of the web app tests: the real app, on the real weights."""


def make_app(model, **options):
    from medsam.segmentation import MedSAMSegmenter
    from medsam.web import create_app

    return create_app(lambda: MedSAMSegmenter(model), model_name="lite_medsam", **options)


def serve(app):
    """Run ``app`` with uvicorn in a thread on a free port of 127.0.0.1; yield its base URL."""
    from medsam.web import serving

    return serving(app)
