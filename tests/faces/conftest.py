import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from ci_skip import skip_or_fail

sys.path.insert(0, str(Path(__file__).resolve().parent))  # composites.py

from composites import FIXTURE  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def faces_extra():
    """The faces extra (dlib + CC0 models) is installed by CI: missing there is a failure, elsewhere a skip."""
    from stylegan.faces import FacesUnavailableError, require_faces

    try:
        require_faces()
    except FacesUnavailableError as err:
        skip_or_fail(f"faces extra missing ({err})")


@pytest.fixture(scope="session")
def att_photos() -> dict[str, np.ndarray]:
    """'s1/1' -> uint8 [112, 92]: the 12 AT&T photos of tests/fixtures (people s1-s4, images 1-3)."""
    paths = sorted(FIXTURE.glob("s*/*.pgm"))
    if len(paths) != 12:
        skip_or_fail(f"AT&T faces fixture incomplete: {FIXTURE}")
    return {f"{p.parent.name}/{p.stem}": np.asarray(PIL.Image.open(p)) for p in paths}
