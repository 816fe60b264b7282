"""Token version 2 encoders: ``klt-ctx`` (VAE, the default), ``klt-rc`` (VAE, kept for the
tests and old links) and ``avif`` (no model).

VAE encoding (both kinds), per coded size tried (the first: the image's size, a side under
``MIN_CODED_SIDE`` stretched to it, since at one latent pixel the model gets colours wrong;
``decode()`` resizes back):

1. the encoder's latent z, as coefficients u of the whitened KLT, then ``PLAIN_STEPS``
   gradient steps on u through the decoder (``GradientDescent``; the first one also measures
   the model's own, unquantised, reconstruction MSE; under ``max_chars``
   ``BUDGET_PLAIN_STEPS``, none: a forward pass measures it);
2. the step: ``STEP_UNITS`` (one step for every image, which spends characters where they buy
   the most PSNR), but finer for any image that would otherwise end up more than
   ``TARGET_LOSS_DB`` below that unquantised reconstruction (the coarsest ladder step that
   keeps it within, predicted exactly in the whitened basis where a unit of coefficient error
   costs about a unit of output MSE). So no image the model reproduces well is quantised
   too coarsely;
3. ``QA_STEPS`` (under ``max_chars`` ``BUDGET_QA_STEPS``) quantiser-aware gradient steps
   (straight-through rounding at that step; for klt-ctx under ``max_chars`` with the rounding
   dead zone ``BUDGET_DEADZONE``), minimising the output MSE plus ``RATE_WEIGHT`` times a
   smooth rate term; at the default quality, an image still more than ``FLOOR_DB`` below the
   unquantised reconstruction after them is quantised at a finer step (predicted; with
   ``FLOOR_CHECKS`` decoder passes to check it and go finer still);
4. with ``max_chars``: the finest ladder step no coarser than the chosen one that fits, found
   before step 3 so that the quantiser-aware steps refine for the step the token will have
   (then the finest that fits after them); if the chosen step does not fit, a smaller coded
   size (same policy as v1), without spending the quantiser-aware steps on this one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from . import avif, environment, klt_ctx, klt_rc, token
from .errors import CodecError
from .klt_ctx import ContextModel
from .klt_rc import Transform
from .limits import MIN_CODED_SIDE

AVIF = 4
KLT_RC = 3
KLT_CTX = 5
#: Step for every image (units of 1/4096). 92 matched v1's default distortion (the RMS of v1's
#: per-channel steps in the whitened basis); with gradient-descent refinement, 110 and a loss
#: cap of 2.75 dB give fewer characters at equal PSNR (chosen on 9 Kodak images, checked on
#: the scikit-image photographs: docs/benchmarks.md, "Experiments").
STEP_UNITS = environment.value("EMMM_V2_STEP_UNITS")
#: Largest PSNR loss (dB) against the model's own unquantised reconstruction before an image
#: gets a finer step than STEP_UNITS.
TARGET_LOSS_DB = environment.value("EMMM_V2_TARGET_DB")
PLAIN_STEPS = environment.value("EMMM_V2_PLAIN_STEPS")
QA_STEPS = environment.value("EMMM_V2_QA_STEPS")
#: Under max_chars (no encode-time target there; docs/benchmarks.md "Experiments"): no plain
#: step, one more quantiser-aware step (the unquantised error then costs a forward pass).
BUDGET_PLAIN_STEPS = environment.value("EMMM_V2_BUDGET_PLAIN_STEPS")
BUDGET_QA_STEPS = environment.value("EMMM_V2_BUDGET_QA_STEPS")
#: Gradient descent's first step size (in units of u per unit of normalised gradient) and
#: the bounds of its Barzilai-Borwein step sizes (GradientDescent).
BB_FIRST = environment.value("EMMM_V2_BB_FIRST")
BB_MIN, BB_MAX = 0.003, 0.3
#: Quantisation error that is always allowed (as PSNR, dB, predicted in the whitened basis,
#: which overestimates it on smooth images): an image the model reproduces almost perfectly
#: (a smooth gradient, a black frame) would otherwise get ever finer steps, and a long
#: token, for differences nobody sees.
CEILING_DB = environment.value("EMMM_V2_CEILING_DB")
#: Decoder passes at most spent checking the floor's finer step (FLOOR_DB). 0: the first finer
#: step, predicted in the whitened basis, is taken unchecked (on Kodak and the scikit-image
#: photos at 316 a check never changed it, and each cost one forward pass: docs/benchmarks.md).
FLOOR_CHECKS = environment.value("EMMM_V2_FLOOR_CHECKS")
#: Weight of the rate term in the quantiser-aware steps (0: none): RATE_WEIGHT * mean over
#: coefficients of log2(1 + |u| / step), a smooth stand-in for the bits a value costs
#: (swept on 6 Kodak images, checked on the scikit-image photographs: docs/benchmarks.md, "Experiments").
RATE_WEIGHT = environment.value("EMMM_V2_RATE_WEIGHT")
#: At the default quality, an image whose quantised output is still more than FLOOR_DB below
#: the model's own unquantised reconstruction after the quantiser-aware steps is quantised at
#: a finer step (the original packing is within ~0.1 dB of that reconstruction).
FLOOR_DB = environment.value("EMMM_V2_FLOOR_DB")
#: klt-ctx rounding dead zone (encoder only): a magnitude rounds up past 0.5 + DEADZONE steps.
#: At the default quality none (on hard images it costs more PSNR than it saves characters);
#: under max_chars BUDGET_DEADZONE (more PSNR for the same characters; docs/benchmarks.md).
DEADZONE = environment.value("EMMM_V2_DEADZONE")
BUDGET_DEADZONE = environment.value("EMMM_V2_BUDGET_DEADZONE")
#: Under max_chars: a coded size is refined further only if its token at the chosen step is at
#: most BUDGET_SLACK times the budget before the quantiser-aware steps (they shorten it, and a
#: coarser step may then fit); the next smaller size is aimed at a token BUDGET_QA_GAIN times
#: the length measured before them. Chosen on the scikit-image photographs at 4,000 characters
#: (docs/benchmarks.md, "Experiments").
BUDGET_SLACK = 1.15
BUDGET_QA_GAIN = 0.85
#: Under max_chars, once a coded size fits, rate control also codes SECOND_SIZE times that
#: size (a finer step) and keeps the token that decodes closer to the image.
SECOND_SIZE = environment.value("EMMM_V2_SECOND_SIZE")
#: Step ladder, units of 1/4096: 2 ** (i / 8), coarsest last.
STEP_LADDER = tuple(sorted({round(2 ** (i / 8)) for i in range(128)}))


def _header(model_code: int, size, coded, shape, kind: int, payload: bytes) -> token.Header:
    return token.Header(
        version=2, model_code=model_code, width=size[0], height=size[1], coded_width=coded[0],
        coded_height=coded[1], latent_channels=shape[0], latent_height=shape[1], latent_width=shape[2],
        payload_kind=kind, payload_length=len(payload),
    )  # fmt: skip


def frame(model_code: int, size, coded, shape, kind: int, payload: bytes) -> str:
    """Token text of a version 2 payload."""
    return token.to_text(token.pack(_header(model_code, size, coded, shape, kind, payload), payload))


def quantisation_mse(coeffs: np.ndarray, units: int, deadzone: float = 0.0) -> float:
    """Output MSE the quantisation adds, predicted in the whitened basis (sum over channels)."""
    step = units / klt_rc.STEP_UNIT
    error = klt_ctx.quantise(coeffs, step, deadzone) * step - coeffs
    return float(np.mean(error**2) * coeffs.shape[0])


def ceiling_mse() -> float:
    """Output MSE (image in [0, 1]) at CEILING_DB."""
    return 10 ** (-CEILING_DB / 10)


def choose_units(coeffs: np.ndarray, mse_unquantised: float, loss_db: float | None = None, deadzone: float = 0.0) -> int:
    """An image's step: ``STEP_UNITS``, but finer where the predicted PSNR would fall more than
    ``loss_db`` below the unquantised reconstruction; never finer than needed to keep the
    quantisation error alone under the MSE of ``CEILING_DB``, and coarser than STEP_UNITS
    where that still holds (a black frame, a smooth gradient)."""
    loss_db = TARGET_LOSS_DB if loss_db is None else loss_db
    within_loss = coarsest_within(coeffs, mse_unquantised * (10 ** (loss_db / 10) - 1), deadzone)
    return max(min(STEP_UNITS, within_loss), coarsest_within(coeffs, ceiling_mse(), deadzone))


def coarsest_within(coeffs: np.ndarray, allowed: float, deadzone: float = 0.0) -> int:
    """The coarsest usable ladder step whose predicted quantisation MSE is at most ``allowed``
    (the finest usable step if none is)."""
    ladder = usable_ladder(coeffs)
    lo, hi, best = 0, len(ladder) - 1, ladder[0]
    while lo <= hi:
        mid = (lo + hi) // 2
        if quantisation_mse(coeffs, ladder[mid], deadzone) <= allowed:
            best, lo = ladder[mid], mid + 1
        else:
            hi = mid - 1
    return best


def usable_ladder(coeffs: np.ndarray) -> list[int]:
    """Ladder steps coarse enough that no symbol clips at the radius cap (klt-rc: around each
    channel's centre; klt-ctx: around zero, klt_ctx.QMAX; the stricter of the two)."""
    flat = coeffs.reshape(coeffs.shape[0], -1)
    spread = max(np.ptp(flat, axis=1).max(), np.abs(flat).max() * klt_rc.MAX_RADIUS / klt_ctx.QMAX)
    least = spread / (klt_rc.MAX_RADIUS * 0.9) * klt_rc.STEP_UNIT
    return [u for u in STEP_LADDER if u >= least] or [STEP_LADDER[-1]]


def refine(net, x: torch.Tensor, size, transform: Transform, plain: int = PLAIN_STEPS, qa: int = QA_STEPS,
           loss_db: float | None = None, deadzone: float = 0.0,
           step_for: Callable[[np.ndarray, int], int | None] | None = None) -> tuple[np.ndarray, int | None]:
    """Refined coefficients u (C, H, W) and the chosen step units (steps 1-3 above), for a
    quantiser with the given dead zone (0: round to nearest). ``step_for(coefficients,
    units)``, when given, replaces the chosen step before the quantiser-aware steps (a budget's
    step); when it returns None, refinement stops there: (coefficients, None)."""
    width, height = size
    target = x[..., :height, :width]
    scale = torch.as_tensor(transform.scale, dtype=torch.float32)[None, :, None, None]
    rotation = torch.as_tensor(transform.rotation, dtype=torch.float32)

    def to_u(z: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ji,njhw->nihw", rotation, z * scale)

    def to_z(u: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ij,njhw->nihw", rotation, u) / scale

    def mse(u: torch.Tensor) -> torch.Tensor:
        return torch.mean((net.decode(to_z(u))[..., :height, :width] - target) ** 2)

    def rounded(u: torch.Tensor, step: float) -> torch.Tensor:
        return torch.sign(u) * torch.floor(u.abs() / step + 0.5 - deadzone) if deadzone else torch.round(u / step)

    with torch.inference_mode():
        u = to_u(net.encode(x))
    u = u.clone()  # a normal tensor, out of inference mode
    descent = GradientDescent(u.shape[2] * u.shape[3])

    def plain_loss(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        error = mse(v)
        return error, error

    def qa_loss(units: int) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        step = units / klt_rc.STEP_UNIT

        def loss(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            error = mse(v + (rounded(v, step) * step - v).detach())  # straight-through rounding
            return error, error + RATE_WEIGHT * torch.mean(torch.log2(1 + v.abs() / step)) if RATE_WEIGHT else error
        return loss

    def coefficients() -> np.ndarray:
        return u[0].numpy().astype(np.float64)

    def quantised_error(units: int) -> float:
        step = units / klt_rc.STEP_UNIT
        with torch.inference_mode():
            return mse(rounded(u, step) * step).item()

    with torch.inference_mode(False), torch.enable_grad():
        measured = None
        for _ in range(plain):
            error, u = descent.step(u, plain_loss)
            measured = error if measured is None else measured
        if measured is None:
            with torch.inference_mode():
                measured = mse(u).item()
        coeffs = coefficients()
        units = choose_units(coeffs, measured, loss_db, deadzone)
        if step_for is not None:
            units = step_for(coeffs, units)
            if units is None:
                return coeffs, None
        error = None
        for _ in range(qa):
            error, u = descent.step(u, qa_loss(units))
    if step_for is None and error is not None:
        floor = max(measured * 10 ** (FLOOR_DB / 10), ceiling_mse())
        units = _floor_step(coefficients(), units, error, floor, deadzone, quantised_error)
    return coefficients(), units


class GradientDescent:
    """Gradient descent on the whitened coefficients u with Barzilai-Borwein step sizes.

    In u a unit of error costs about a unit of output MSE in every direction, so plain
    gradient steps suit it; the step size is the Barzilai-Borwein one (|s|^2 / s.y from the
    last move s and gradient change y), which adapts to the curvature along the path with no
    extra decoder pass. Three steps of it reconstruct 0.8 dB better than three Adam steps, two
    thirds of the way to eight (docs/benchmarks.md, "Experiments")."""

    def __init__(self, positions: float) -> None:
        # output MSE ~ |u - u*|^2 / positions, so gradient * positions / 2 is the displacement
        self.gain = positions / 2
        self.rate = BB_FIRST
        self.previous: tuple[torch.Tensor, torch.Tensor] | None = None

    def step(self, u: torch.Tensor, loss_of: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, torch.Tensor]:
        """(the error before the step, u after it); ``loss_of(u)`` gives (error, loss)."""
        v = u.detach().clone().requires_grad_(True)
        error, loss = loss_of(v)
        loss.backward()
        gradient = v.grad.detach() * self.gain
        if self.previous is not None:
            moved, change = u - self.previous[0], gradient - self.previous[1]
            curvature = float((moved * change).sum())
            if curvature > 0:
                self.rate = min(max(float((moved * moved).sum()) / curvature, BB_MIN), BB_MAX)
        self.previous = (u.detach(), gradient)
        return error.item(), (u - self.rate * gradient).detach()


def _floor_step(coeffs: np.ndarray, units: int, error: float, floor: float, deadzone: float,
                quantised_error: Callable[[int], float]) -> int:
    """No image left behind: while the image's quantised error is over ``floor`` (FLOOR_DB
    below the model's own unquantised reconstruction, never above CEILING_DB's error), the
    coarsest finer ladder step whose predicted quantisation error makes up the difference.
    The first choice is taken as predicted; each further one follows a check of the last with
    one decoder pass, at most FLOOR_CHECKS of them."""
    for checks in range(FLOOR_CHECKS + 1):
        if error <= floor:
            break
        finer = coarsest_within(coeffs, quantisation_mse(coeffs, units, deadzone) - (error - floor), deadzone)
        if finer >= units:  # already the finest usable step
            break
        units = finer
        if checks == FLOOR_CHECKS:
            break
        error = quantised_error(finer)
    return units


def encode_klt(rgb: Image.Image, spec, net, transform: Transform, max_chars: int | None, *, next_size,
               image_to_tensor, render: Callable[[str], Image.Image] | None = None, steps: int | None = None,
               loss_db: float | None = None, context: ContextModel | None = None) -> str:
    """A version 2 VAE token (see the module docstring): ``klt-ctx`` with the ``context``
    model, else ``klt-rc``. ``steps``: refinement steps in all (the last ``QA_STEPS`` of them
    quantiser-aware); default PLAIN_STEPS + QA_STEPS (under ``max_chars`` the BUDGET_ ones).
    ``render(token)`` (the decoded image) lets rate control compare two coded sizes' tokens."""
    plain, qa = (PLAIN_STEPS, QA_STEPS) if max_chars is None else (BUDGET_PLAIN_STEPS, BUDGET_QA_STEPS)
    total = plain + qa if steps is None else max(0, steps)
    qa = min(qa, total)
    deadzone = 0.0 if context is None else DEADZONE if max_chars is None else BUDGET_DEADZONE
    full = coded = tuple(max(side, MIN_CODED_SIDE) for side in rgb.size)
    fitting: list[str] = []
    length_before_qa = 0
    while True:
        source = rgb if coded == rgb.size else rgb.resize(coded, Image.Resampling.LANCZOS)
        x = image_to_tensor(source, net.downscale)

        def text(coeffs: np.ndarray, units: int) -> str:
            if context is None:
                return frame(spec.code, rgb.size, coded, coeffs.shape, KLT_RC, klt_rc.pack(coeffs, units))
            return frame(spec.code, rgb.size, coded, coeffs.shape, KLT_CTX, klt_ctx.pack(coeffs, units, context, deadzone))

        if max_chars is None:
            coeffs, units = refine(net, x, source.size, transform, plain=total - qa, qa=qa, loss_db=loss_db, deadzone=deadzone)
            return text(coeffs, units)

        try:  # the smallest size has no smaller one to go to: its quantiser-aware steps always run
            next_size(rgb.size, coded, 0.5, MIN_CODED_SIDE, max_chars)
            smallest = False
        except CodecError:
            smallest = True

        def budget_step(coeffs: np.ndarray, units: int) -> int | None:
            """Before the quantiser-aware steps: the finest step that fits, so that they refine
            for the step the token will have; None (a smaller size) if the token at the
            chosen step is over BUDGET_SLACK times the budget."""
            nonlocal length_before_qa
            length_before_qa = len(text(coeffs, units))
            if length_before_qa > max_chars * BUDGET_SLACK and not smallest:
                return None
            found = fitting_step(coeffs, units, text, max_chars)
            return units if found is None else min(units, found[0])

        coeffs, units = refine(net, x, source.size, transform, plain=total - qa, qa=qa, loss_db=loss_db,
                               deadzone=deadzone, step_for=budget_step)  # fmt: skip
        found = fitting_step(coeffs, units, text, max_chars) if units is not None else None
        if found is not None:
            fitting.append(found[1])
            if coded == full or render is None or len(fitting) == 2:
                break
            shrink = SECOND_SIZE  # the second candidate: smaller, at a finer step
        else:
            shrink = min(0.8, 0.97 * math.sqrt(max_chars / (length_before_qa * BUDGET_QA_GAIN)))
        try:
            coded = next_size(rgb.size, coded, shrink, MIN_CODED_SIDE, max_chars)
        except CodecError:
            if not fitting:
                raise
            break
    if len(fitting) == 1:
        return fitting[0]
    reference = np.asarray(rgb, dtype=np.float64)
    return min(fitting, key=lambda t: float(np.mean((np.asarray(render(t), dtype=np.float64) - reference) ** 2)))


def fitting_step(coeffs: np.ndarray, units: int, text: Callable[[np.ndarray, int], str], max_chars: int) -> tuple[int, str] | None:
    """(units, token) at the finest ladder step that fits ``max_chars``: finer than ``units``
    when the token at ``units`` fits, else the first coarser one that fits; None if none does."""
    ladder = usable_ladder(coeffs)
    at_units = text(coeffs, units)
    if len(at_units) > max_chars:
        coarser = (u for u in ladder if u > units)
        return next(((u, t) for u in coarser if len(t := text(coeffs, u)) <= max_chars), None)
    best = (units, at_units)
    finer = [u for u in ladder if u < units]
    lo, hi = 0, len(finer) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = text(coeffs, finer[mid])
        if len(candidate) <= max_chars:
            best, hi = (finer[mid], candidate), mid - 1
        else:
            lo = mid + 1
    return best


def encode_avif(rgb: Image.Image, max_chars: int | None, *, next_size) -> str:
    """A version 2 ``avif`` token: the image as AVIF, at the highest quality that fits."""
    coded = rgb.size
    while True:
        source = rgb if coded == rgb.size else rgb.resize(coded, Image.Resampling.LANCZOS)
        if max_chars is None:
            return frame(0, rgb.size, coded, (0, 0, 0), AVIF, avif.encode(source))
        budget = max_chars * 3 // 4 - token.OVERHEAD
        data = avif.largest_quality_within(source, budget) if budget > 0 else None
        if data is not None:
            return frame(0, rgb.size, coded, (0, 0, 0), AVIF, data)
        smallest = len(avif.encode(source, 0)) if budget > 0 else 1 << 30
        shrink = min(0.8, 0.97 * math.sqrt(max(budget, 1) / smallest))
        coded = next_size(rgb.size, coded, shrink, 1, max_chars)


def minimum_avif_chars() -> int:
    """A floor for ``max_chars`` with ``kind="avif"`` (framing plus a tiny AVIF)."""
    if not avif.available():  # pragma: no cover
        raise CodecError("this server cannot write AVIF")
    return math.ceil((token.OVERHEAD + len(avif.encode(Image.new("RGB", (8, 8)), 0))) * 4 / 3)
