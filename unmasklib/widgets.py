"""The slider editor: steer an unmasking through the 3D face, live, in a notebook.

    editor = UnmaskEditor(unmasker.session(image))
    editor                      # shows the panel; move a slider and the result follows

Sliders set the named expression components, yaw and pitch, and where the light comes from;
"sample another" draws a new hidden expression from the 3DMM prior and new noise, "reset"
returns to what N3D read from the image. Each move calls `UnmaskSession.update` once.
"""

from __future__ import annotations

import io

import ipywidgets as widgets
import numpy as np
import torch
from PIL import Image

from .face3d import light_direction
from .images import to_uint8
from .painting import with_prior_expressions
from .pipeline import LIGHT_NAMES, POSE_NAMES, UnmaskResult, UnmaskSession, edit_coeffs

POSE_RANGE = {"yaw": 0.8, "pitch": 0.5}  # radians either way; roll is left to the code API
LIGHT_RANGE = {"azimuth": (-1.5, 1.5), "elevation": (-1.0, 1.2)}
EXPRESSION_RANGE = 2.5  # prior standard deviations either way
ANGLES = (*POSE_NAMES, *LIGHT_NAMES)  # the sliders that are not expression components


def png_bytes(pixels: np.ndarray) -> bytes:
    """uint8 `(H, W, 3)` -> PNG file bytes, what `widgets.Image` shows."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


class UnmaskEditor:
    """An ipywidgets panel over one prepared input.

    sliders: {name: FloatSlider} for the named expression components, "yaw", "pitch",
    "azimuth" and "elevation"; images: {"input", "render", "result"} `widgets.Image`, the
    aligned masked crop, the 3D face G follows and G's painting; result: the latest
    `UnmaskResult`; widget: the whole panel (also shown when the editor is a cell's value).
    """

    def __init__(self, session: UnmaskSession, seed: int = 0, display_size: int = 192) -> None:
        self.session, self.first_seed = session, seed
        face_model = session.unmasker.face_model
        self.sliders: dict[str, widgets.FloatSlider] = {}
        for name in face_model.expression_names:
            if name.startswith("expr"):  # unnamed components get no slider
                continue
            low = 0.0 if name in face_model.one_sided_expressions else -EXPRESSION_RANGE
            self.sliders[name] = self._slider(name, low, EXPRESSION_RANGE)
        for name, reach in POSE_RANGE.items():
            self.sliders[name] = self._slider(name, -reach, reach)
        for name, (low, high) in LIGHT_RANGE.items():
            self.sliders[name] = self._slider(f"light {name}", low, high)
        self.images = {name: widgets.Image(format="png", width=display_size,
                                           height=display_size)
                       for name in ("input", "render", "result")}
        sample, reset = widgets.Button(description="sample another"), widgets.Button(
            description="reset")
        sample.on_click(lambda _: self.sample_another())
        reset.on_click(lambda _: self.reset())
        self.status = widgets.Label()
        captions = [widgets.VBox([widgets.Label(title), self.images[name]])
                    for name, title in (("input", "masked input (aligned)"),
                                        ("render", "3D face"), ("result", "result"))]
        expression = [s for n, s in self.sliders.items() if n not in ANGLES]
        rest = [s for n, s in self.sliders.items() if n in ANGLES]
        self.widget = widgets.VBox([
            widgets.HBox(captions),
            widgets.HBox([widgets.VBox(expression), widgets.VBox([*rest, widgets.HBox(
                [sample, reset]), self.status])]),
        ])
        self.images["input"].value = png_bytes(to_uint8(session.working[0]))
        self._holding = False
        for slider in self.sliders.values():
            slider.observe(lambda _: self.refresh(), names="value")
        self.reset()  # N3D's reading, the first seed: what the sliders start from

    @staticmethod
    def _slider(description: str, low: float, high: float) -> widgets.FloatSlider:
        return widgets.FloatSlider(value=0.0, min=low, max=high, step=0.05,
                                   description=description, continuous_update=True,
                                   readout_format=".2f",
                                   style={"description_width": "90px"})

    def values(self) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
        """The sliders moved away from the current base face, as (expression, pose, light)
        dicts for `edit_coeffs`; untouched ones leave the base's coefficients exact."""
        moved = {n: s.value for n, s in self.sliders.items()
                 if abs(s.value - self._base_values[n]) > 1e-9}
        expression = {n: v for n, v in moved.items() if n not in ANGLES}
        return (expression, {n: v for n, v in moved.items() if n in POSE_NAMES},
                {n: v for n, v in moved.items() if n in LIGHT_NAMES})

    def refresh(self) -> UnmaskResult | None:
        """Paint with the sliders' values and show it (nothing while sliders are being set)."""
        if self._holding:
            return None
        coeffs = edit_coeffs(self.session.unmasker.face_model, self.base.clone(),
                             *self.values())
        self.result = self.session.update(coeffs=coeffs[0], seed=self.seed)
        self.images["render"].value = png_bytes(self.result.render)
        self.images["result"].value = png_bytes(self.result.crop)
        self.status.value = f"noise seed {self.seed}, prior draw {self.draws}"
        return self.result

    def sample_another(self) -> UnmaskResult | None:
        """A new hidden expression from the 3DMM prior and new noise; sliders follow it."""
        self.draws += 1
        generator = torch.Generator().manual_seed(self.first_seed * 1000 + self.draws)
        model = self.session.unmasker.face_model
        self.base = with_prior_expressions(model, self.base[0], 1, generator)
        self.seed = self.first_seed + self.draws
        self._set_sliders_from(self.base)
        return self.refresh()

    def reset(self) -> UnmaskResult | None:
        """Back to N3D's reading of the image and the first noise seed."""
        self.base = self.session.guidance.coeffs.cpu().clone()
        self.seed, self.draws = self.first_seed, 0
        self._set_sliders_from(self.base)
        return self.refresh()

    def _set_sliders_from(self, coeffs: torch.Tensor) -> None:
        """Move every slider to the value `coeffs` `(1, size)` holds (clipped to its range),
        without painting."""
        model = self.session.unmasker.face_model
        expression = coeffs[0, model.layout.slice("expression")]
        pose = model.layout.pose(coeffs)[0][0]
        azimuth, elevation = light_direction(coeffs[:, model.layout.slice("lighting")])
        current = {"azimuth": float(azimuth[0]), "elevation": float(elevation[0])}
        current |= {name: float(pose[POSE_NAMES.index(name)]) for name in POSE_RANGE}
        current |= {name: float(expression[model.expression_names.index(name)])
                    for name in self.sliders if name in model.expression_names}
        self._holding = True
        for name, slider in self.sliders.items():
            slider.value = float(np.clip(current[name], slider.min, slider.max))
        self._base_values = {name: slider.value for name, slider in self.sliders.items()}
        self._holding = False

    def _repr_mimebundle_(self, **kwargs) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)
