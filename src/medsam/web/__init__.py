"""The interactive web app (``medsam serve``): a REST API and a NiiVue page.

* :mod:`.sessions` - sessions: an uploaded image, its objects, their label map; bounds;
* :mod:`.uploads` - uploaded files to a readable case, the viewer's NIfTI;
* :mod:`.app` - the FastAPI application (imports FastAPI when called).
"""

from .app import create_app, niivue_bundle
from .sessions import ServerLimits, Session, SessionError, SessionStore

__all__ = ["create_app", "niivue_bundle", "ServerLimits", "Session", "SessionError", "SessionStore"]
