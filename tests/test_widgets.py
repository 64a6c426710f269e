"""The slider editor on the tiny smoke run: sliders reach the result, sample and reset."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY

from unmasklib import Unmasker
from unmasklib.data import held_out_faces
from unmasklib.widgets import UnmaskEditor


@pytest.fixture(scope="module")
def session(tiny_run):
    unmasker = Unmasker.from_run(tiny_run, profile=TINY)
    return unmasker.session(held_out_faces(TINY, tiny_run, progress=False)[0]["masked"])


def test_the_editor_opens_on_n3ds_reading_exactly(session):
    editor = UnmaskEditor(session, seed=4)
    assert np.array_equal(editor.result.image, session.update(seed=4).image)
    assert editor.images["result"].value[:4] == b"\x89PNG"


def test_moving_a_slider_repaints_with_that_value(session):
    editor = UnmaskEditor(session)
    before = editor.images["result"].value, editor.images["render"].value
    editor.sliders["jaw_open"].value = 2.0
    model = session.unmasker.face_model
    jaw = model.layout.slice("expression").start + model.expression_names.index("jaw_open")
    assert float(editor.result.coeffs[jaw]) == 2.0
    assert editor.images["render"].value != before[1]
    assert editor.images["result"].value != before[0]
    editor.sliders["yaw"].value = 0.5
    assert float(editor.result.coeffs[model.layout.slice("pose").start]) == pytest.approx(0.5)
    assert float(editor.result.coeffs[jaw]) == 2.0  # earlier moves stay


def test_sample_another_draws_a_new_face_and_reset_returns(session):
    editor = UnmaskEditor(session)
    first = editor.result.image.copy()
    drawn = editor.sample_another()
    assert editor.seed == 1 and not np.array_equal(drawn.image, first)
    model = session.unmasker.face_model
    jaw = model.expression_names.index("jaw_open")
    expression = drawn.coeffs[model.layout.slice("expression")]
    assert editor.sliders["jaw_open"].value == pytest.approx(
        min(float(expression[jaw]), 2.5))
    assert np.array_equal(editor.reset().image, first)
