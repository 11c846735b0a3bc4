"""The interactive web app (``medsam serve``): a REST API and a NiiVue page.

* :mod:`.sessions` - a session: an uploaded image, its objects, their label map;
* :mod:`.store` - the open sessions, within :mod:`.limits` (count, idle time, memory);
* :mod:`.uploads` - uploaded files to a readable case, the viewer's NIfTI;
* :mod:`.app` - the FastAPI application (imports FastAPI when called).
"""

from .app import create_app, niivue_bundle, serving
from .limits import ServerLimits, SessionError
from .sessions import Session
from .store import SessionStore

__all__ = ["create_app", "niivue_bundle", "serving", "ServerLimits", "Session", "SessionError", "SessionStore"]
