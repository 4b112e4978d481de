"""The identity embedding: same person near, different people far, stable under placement in a scene."""

import numpy as np
from composites import Placement, composite

from stylegan.faces import SAME_PERSON_DISTANCE, detect_faces, identity_distance, identity_embedding


def _embed(photo):
    return identity_embedding(photo, detect_faces(photo, detector="hog")[0])


def test_same_person_is_nearer_than_different_people(att_photos):
    emb = {name: _embed(photo) for name, photo in att_photos.items()}
    assert all(e.shape == (128,) and e.dtype == np.float64 for e in emb.values())
    pairs = [(a, b) for a in emb for b in emb if a < b]
    same = [identity_distance(emb[a], emb[b]) for a, b in pairs if a.split("/")[0] == b.split("/")[0]]
    other = [identity_distance(emb[a], emb[b]) for a, b in pairs if a.split("/")[0] != b.split("/")[0]]
    assert max(same) < SAME_PERSON_DISTANCE  # AT&T: 3 photos of each of 4 people
    assert np.mean(other) > np.mean(same) + 0.2


def test_embedding_survives_pasting_into_a_scene(att_photos):
    photo = att_photos["s3/1"]
    scene = composite(photo, Placement((150, 160), 0.8, 12.0), (336, 276), seed=3)
    assert identity_distance(_embed(photo), _embed(scene)) < 0.35
