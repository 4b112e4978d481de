"""The explorer: a local web page for generating and mixing images (`stylegan serve`), an ASGI app on Starlette.

Library calls only (stylegan.editing, stylegan.io, stylegan.images); the CLI is never imported. Needs the [serve]
extra (starlette, uvicorn), imported here and nowhere below the CLI's `serve` command.

    from stylegan.serve import create_app, load_slots
    app = create_app(load_slots([None], torch.device("cpu")))   # then: uvicorn.run(app)
"""

from stylegan.serve.app import Settings, create_app
from stylegan.serve.models import ModelSlot, load_slots
from stylegan.serve.uploads import UploadLimits

__all__ = ["ModelSlot", "Settings", "UploadLimits", "create_app", "load_slots"]
