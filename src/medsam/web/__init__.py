"""The interactive web app (``medsam serve``): a REST API and a NiiVue page.

* :mod:`.sessions` - a session: an uploaded image, its objects, their label map;
* :mod:`.store` - the open sessions, within :mod:`.limits` (count, idle time, memory);
* :mod:`.uploads` - uploaded files to a readable case, the viewer's NIfTI;
* :mod:`.assets` - NiiVue's and Swagger UI's files (from npm: built into a wheel, or ``npm ci``);
* :mod:`.app` - the FastAPI application (imports FastAPI when called).
"""

from .app import create_app, serving
from .assets import viewer_files
from .limits import ServerLimits, SessionError
from .sessions import Session
from .store import SessionStore

__all__ = ["create_app", "viewer_files", "serving", "ServerLimits", "Session", "SessionError", "SessionStore"]
