# Copyright (c) diffmtl contributors. All rights reserved.
"""Random 3-D room scenes: what is in a synthetic image.

A scene is a room seen by a pinhole camera: a floor (``y = 0``), a back wall
and two side walls of unbounded height, an optional window in the back wall,
2-6 objects standing on the floor (spheres, boxes, vertical cylinders) and
articulated figures made of a head, a torso and eight limb capsules (upper /
lower arms and legs). World coordinates: X right, Y up, Z into the room; the
camera sits at ``z = 0`` and looks into the room, pitched down.

:func:`sample_scene` draws everything from a ``numpy.random.Generator`` so a
scene is a pure function of its seed.
"""
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from diffmtl.structures.task_spec import HUMAN_PART_CLASSES

__all__ = [
    'SEMSEG_CLASSES', 'SEMSEG_PALETTE', 'PARTS_PALETTE', 'SHAPE_CLASSES',
    'Material', 'Primitive', 'Camera', 'Scene', 'sample_scene'
]

#: Semantic classes, in label-index order.
SEMSEG_CLASSES = ('floor', 'wall', 'sphere', 'box', 'cylinder', 'figure')
SEMSEG_PALETTE = [[128, 64, 128], [70, 70, 70], [220, 20, 60],
                  [0, 0, 142], [250, 170, 30], [107, 142, 35]]
#: Figure parts use the human-parts classes of the task table.
PARTS_PALETTE = [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255],
                 [255, 255, 0], [255, 0, 255], [0, 255, 255]]
#: Stand-alone object classes (a subset of SEMSEG_CLASSES).
SHAPE_CLASSES = ('sphere', 'box', 'cylinder')
TEXTURES = ('plain', 'checker', 'stripes', 'noise')

_SEM = {name: i for i, name in enumerate(SEMSEG_CLASSES)}
_PART = {name: i for i, name in enumerate(HUMAN_PART_CLASSES)}
assert len(HUMAN_PART_CLASSES) == 7, 'figure parts expect 7 part classes'


@dataclass
class Material:
    """Procedural surface appearance.

    Args:
        color_a (np.ndarray): (3,) RGB albedo in [0, 1].
        color_b (np.ndarray): (3,) second albedo used by patterned textures.
        texture (str): One of ``TEXTURES``.
        scale (float): Pattern period in metres.
        direction (np.ndarray): (3,) unit vector across which stripes vary.
        seed (int): Lattice seed of the value-noise texture.
    """
    color_a: np.ndarray
    color_b: np.ndarray
    texture: str = 'plain'
    scale: float = 0.5
    direction: np.ndarray = field(
        default_factory=lambda: np.array([1.0, 0.0, 0.0]))
    seed: int = 0


@dataclass
class Primitive:
    """One ray-castable surface with its labels.

    Args:
        kind (str): ``'plane'``, ``'sphere'``, ``'box'``, ``'cylinder'`` or
            ``'capsule'``; ``params`` are the keyword arguments of the
            matching ``intersect_*`` function of ``primitives``.
        params (dict): Geometry.
        semantic (int): Index into ``SEMSEG_CLASSES``.
        instance (int): Instance id (> 0); a figure's parts share one.
        part (int): Index into ``HUMAN_PART_CLASSES`` (0 = not a figure).
        material (Material): Appearance.
        bound (tuple, optional): Bounding sphere ``(centre, radius)`` used
            to ray-cast only the pixels it can cover; ``None`` = all pixels.
    """
    kind: str
    params: dict
    semantic: int
    instance: int
    part: int
    material: Material
    bound: Optional[Tuple[np.ndarray, float]] = None


@dataclass
class Camera:
    """Pinhole camera; pitch > 0 looks down, yaw > 0 turns towards +X.

    Attributes ``right``, ``down`` and ``forward`` are the camera x, y and z
    axes in world coordinates (the camera frame of the normals task).
    """
    position: np.ndarray
    pitch: float
    yaw: float
    hfov: float

    @property
    def forward(self) -> np.ndarray:
        cp, sp = np.cos(self.pitch), np.sin(self.pitch)
        return np.array([np.sin(self.yaw) * cp, -sp, np.cos(self.yaw) * cp])

    @property
    def right(self) -> np.ndarray:
        return np.array([np.cos(self.yaw), 0.0, -np.sin(self.yaw)])

    @property
    def down(self) -> np.ndarray:
        cp, sp = np.cos(self.pitch), np.sin(self.pitch)
        return -np.array([np.sin(self.yaw) * sp, cp, np.cos(self.yaw) * sp])

    def intrinsics(self, height: int, width: int) -> dict:
        """``fx, fy, cx, cy`` in pixels for an image of the given size.

        Pixel ``(u, v)`` (column, row) looks through the camera-frame point
        ``((u + 0.5 - cx) / fx, (v + 0.5 - cy) / fy, 1)``.
        """
        fx = 0.5 * width / np.tan(0.5 * self.hfov)
        return dict(fx=float(fx), fy=float(fx), cx=0.5 * width,
                    cy=0.5 * height)


@dataclass
class Scene:
    """Everything :func:`render_scene` needs to draw one image."""
    camera: Camera
    room_width: float
    room_depth: float
    primitives: List[Primitive]
    light_dir: np.ndarray
    ambient: float
    window: Optional[Tuple[float, float, float, float]]
    sky_colors: Tuple[np.ndarray, np.ndarray]
    num_figures: int
    noise_sigma: float
    noise_seed: int


def _random_color(rng: np.random.Generator) -> np.ndarray:
    hue = rng.uniform(0, 1)
    sat = rng.uniform(0.15, 0.9)
    val = rng.uniform(0.35, 1.0)
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6) % 6
    return val * (1 - sat * np.clip(np.minimum(k, 4 - k), 0, 1))


def _random_material(rng: np.random.Generator) -> Material:
    a = _random_color(rng)
    # The second colour is a lighter / darker variant or a new colour.
    if rng.uniform() < 0.5:
        b = np.clip(a * rng.uniform(0.35, 0.75), 0, 1)
    else:
        b = _random_color(rng)
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    return Material(
        color_a=a,
        color_b=b,
        texture=TEXTURES[rng.integers(len(TEXTURES))],
        scale=float(rng.uniform(0.08, 0.6)),
        direction=direction,
        seed=int(rng.integers(1 << 30)))


def _figure_primitives(rng: np.random.Generator, x: float, z: float,
                       height: float, instance: int) -> List[Primitive]:
    """An articulated figure of total ``height`` standing at (x, 0, z)."""
    yaw = rng.uniform(-np.pi, np.pi)
    up = np.array([0.0, 1.0, 0.0])
    fwd = np.array([np.sin(yaw), 0.0, np.cos(yaw)])
    side = np.array([np.cos(yaw), 0.0, -np.sin(yaw)])
    h = height
    r_leg, r_arm, r_head = 0.045 * h, 0.032 * h, 0.07 * h
    l_uleg, l_lleg = 0.25 * h, 0.22 * h
    l_uarm, l_larm = 0.17 * h, 0.15 * h
    torso_half = np.array([0.10 * h, 0.14 * h, 0.055 * h])

    def limb_dir(swing, abduct=0.0, s=1.0):
        d = (np.cos(abduct) * (np.cos(swing) * -up + np.sin(swing) * fwd) +
             np.sin(abduct) * s * side)
        return d / np.linalg.norm(d)

    def bend(d, angle):
        f_perp = fwd - (fwd @ d) * d
        f_perp /= max(np.linalg.norm(f_perp), 1e-9)
        return np.cos(angle) * d + np.sin(angle) * f_perp

    pelvis = np.array([x, 0.0, z])  # raised below so the feet touch y = 0
    swing = rng.uniform(-0.45, 0.45)
    segments = []  # (part, p0, p1, radius)
    for s, sw in ((-1.0, swing), (1.0, -swing * rng.uniform(0.4, 1.0))):
        hip = pelvis + s * 0.055 * h * side
        d_up = limb_dir(sw, rng.uniform(0.0, 0.12), s)
        knee = hip + l_uleg * d_up
        d_lo = bend(d_up, -rng.uniform(0.0, 0.6))
        foot = knee + l_lleg * d_lo
        segments += [('uleg', hip, knee, r_leg), ('lleg', knee, foot, r_leg)]
    lift = -min(seg[2][1] - seg[3] for seg in segments if seg[0] == 'lleg')
    segments = [(p, a + lift * up, b + lift * up, r)
                for p, a, b, r in segments]
    pelvis = pelvis + lift * up
    torso_c = pelvis + (torso_half[1] + 0.02 * h) * up
    head_c = torso_c + (torso_half[1] + 0.02 * h + r_head) * up
    shoulder_y = torso_c + (torso_half[1] - 0.035 * h) * up
    for s in (-1.0, 1.0):
        shoulder = shoulder_y + s * (torso_half[0] + r_arm) * side
        d_up = limb_dir(rng.uniform(-0.6, 0.8), rng.uniform(0.05, 1.4), s)
        elbow = shoulder + l_uarm * d_up
        hand = elbow + l_larm * bend(d_up, rng.uniform(0.0, 1.5))
        segments += [('uarm', shoulder, elbow, r_arm),
                     ('larm', elbow, hand, r_arm)]

    # One outfit per figure, a different material on the head.
    material = _random_material(rng)

    def prim(kind, params, part, bound):
        return Primitive(kind, params, _SEM['figure'], instance, _PART[part],
                         material, bound)

    out = [
        Primitive('sphere', dict(center=head_c, radius=r_head), _SEM['figure'],
                  instance, _PART['head'], _random_material(rng),
                  (head_c, r_head)),
        prim('box', dict(center=torso_c, half_size=torso_half, yaw=yaw),
             'torso', (torso_c, float(np.linalg.norm(torso_half))))
    ]
    for part, p0, p1, r in segments:
        out.append(
            prim('capsule', dict(p0=p0, p1=p1, radius=r), part,
                 ((p0 + p1) / 2, float(np.linalg.norm(p1 - p0)) / 2 + r)))
    return out


def _object_primitive(rng: np.random.Generator, shape: str, x: float,
                      z: float, size: float, instance: int) -> Primitive:
    material = _random_material(rng)
    sem = _SEM[shape]
    if shape == 'sphere':
        c = np.array([x, size, z])
        return Primitive('sphere', dict(center=c, radius=size), sem, instance,
                         0, material, (c, size))
    if shape == 'box':
        half = np.array([size, rng.uniform(0.5, 1.6) * size, size])
        half[2] *= rng.uniform(0.6, 1.0)
        c = np.array([x, half[1], z])
        return Primitive(
            'box',
            dict(center=c, half_size=half, yaw=rng.uniform(-np.pi, np.pi)),
            sem, instance, 0, material, (c, float(np.linalg.norm(half))))
    length = rng.uniform(1.0, 3.5) * size
    base = np.array([x, 0.0, z])
    return Primitive(
        'cylinder',
        dict(base=base, axis=np.array([0.0, 1.0, 0.0]), length=length,
             radius=size), sem, instance, 0, material,
        (base + np.array([0, length / 2, 0]),
         float(np.hypot(length / 2, size))))


def sample_scene(rng: np.random.Generator,
                 aspect: float = 0.75,
                 min_objects: int = 2,
                 max_objects: int = 6,
                 figure_probs: Tuple[float, ...] = (0.3, 0.45, 0.25),
                 window_prob: float = 0.9,
                 noise: bool = True) -> Scene:
    """Draw a random room scene.

    Args:
        rng (np.random.Generator): Source of all randomness.
        aspect (float): Image height / width (sets the vertical field of
            view, used to put the window where the camera sees the wall).
        min_objects (int): Fewest objects (figures included).
        max_objects (int): Most objects (figures included).
        figure_probs (tuple): Probabilities of 0, 1, 2, ... figures.
        window_prob (float): Chance of a window (invalid depth) in the back
            wall.
        noise (bool): Draw a sensor-noise level; otherwise it is 0.

    Returns:
        Scene: The scene; fewer objects than drawn when they do not fit.
    """
    room_w = rng.uniform(6.0, 10.0)
    room_d = rng.uniform(7.0, 12.0)
    cam = Camera(
        position=np.array([
            rng.uniform(-0.5, 0.5) * (room_w / 2 - 1.0),
            rng.uniform(1.0, 2.0), 0.0
        ]),
        pitch=np.deg2rad(rng.uniform(8.0, 30.0)),
        yaw=np.deg2rad(rng.uniform(-15.0, 15.0)),
        hfov=np.deg2rad(rng.uniform(50.0, 75.0)))
    half_v = np.arctan(np.tan(cam.hfov / 2) * aspect)

    # Floor: a plane; walls: unbounded planes (the room has no ceiling).
    prims = [
        Primitive('plane', dict(point=np.zeros(3), normal=np.array(
            [0.0, 1.0, 0.0])), _SEM['floor'], 1, 0, _random_material(rng)),
        Primitive('plane', dict(point=np.array([0.0, 0.0, room_d]),
                                normal=np.array([0.0, 0.0, -1.0])),
                  _SEM['wall'], 2, 0, _random_material(rng)),
        Primitive('plane', dict(point=np.array([-room_w / 2, 0.0, 0.0]),
                                normal=np.array([1.0, 0.0, 0.0])),
                  _SEM['wall'], 3, 0, _random_material(rng)),
        Primitive('plane', dict(point=np.array([room_w / 2, 0.0, 0.0]),
                                normal=np.array([-1.0, 0.0, 0.0])),
                  _SEM['wall'], 4, 0, _random_material(rng)),
    ]
    # Side walls share one wallpaper most of the time.
    if rng.uniform() < 0.7:
        prims[3].material = prims[2].material

    # Objects on the floor, inside the view, without overlaps.
    n_obj = int(rng.integers(min_objects, max_objects + 1))
    probs = np.asarray(figure_probs, dtype=float)
    n_fig = min(int(rng.choice(len(probs), p=probs / probs.sum())), n_obj)
    kinds = ['figure'] * n_fig + [
        SHAPE_CLASSES[i] for i in rng.integers(len(SHAPE_CLASSES),
                                               size=n_obj - n_fig)
    ]
    fwd_h = np.array([np.sin(cam.yaw), np.cos(cam.yaw)])
    right_h = np.array([np.cos(cam.yaw), -np.sin(cam.yaw)])
    near = max(1.6, cam.position[1] / np.tan(cam.pitch + half_v))
    placed = []  # (x, z, footprint radius)
    instance = 10
    figures = 0
    for kind in kinds:
        size = (rng.uniform(1.4, 1.9) if kind == 'figure' else
                rng.uniform(0.2, 0.6))
        foot = 0.3 * size if kind == 'figure' else size * (
            1.42 if kind == 'box' else 1.0)
        for _ in range(30):
            dist = rng.uniform(near, min(room_d - 0.6, near + 6.0))
            lat = rng.uniform(-0.8, 0.8) * dist * np.tan(cam.hfov / 2)
            x, z = cam.position[[0, 2]] + dist * fwd_h + lat * right_h
            if (abs(x) > room_w / 2 - foot - 0.05 or z > room_d - foot - 0.05
                    or z < 1.0):
                continue
            if all(np.hypot(x - px, z - pz) > foot + pf + 0.1
                   for px, pz, pf in placed):
                break
        else:
            continue
        placed.append((x, z, foot))
        if kind == 'figure':
            prims += _figure_primitives(rng, x, z, size, instance)
            figures += 1
        else:
            prims.append(_object_primitive(rng, kind, x, z, size, instance))
        instance += 1

    # Window in the back wall, where the camera sees it.
    window = None
    if rng.uniform() < window_prob:
        c = cam.position
        up_c = -cam.down
        ys = []
        for sign in (1.0, -1.0):
            d = cam.forward + sign * np.tan(half_v) * up_c
            ys.append(c[1] + (room_d - c[2]) / d[2] * d[1])
        y_top, y_bot = ys[0], max(ys[1], 0.0)
        if y_top - y_bot > 0.3:
            y0 = y_bot + rng.uniform(0.1, 0.6) * (y_top - y_bot)
            y1 = y0 + rng.uniform(0.6, 1.6)
            xc = (c[0] + (room_d - c[2]) * cam.forward[0] / cam.forward[2] +
                  rng.uniform(-1.0, 1.0))
            half_w = rng.uniform(0.5, 1.25)
            x0 = max(xc - half_w, -room_w / 2 + 0.2)
            x1 = min(xc + half_w, room_w / 2 - 0.2)
            if x1 > x0:
                window = (float(x0), float(x1), float(y0), float(y1))

    light = np.array(
        [rng.normal(), rng.uniform(1.0, 2.5), -rng.uniform(0.2, 1.5)])
    return Scene(
        camera=cam,
        room_width=float(room_w),
        room_depth=float(room_d),
        primitives=prims,
        light_dir=light / np.linalg.norm(light),
        ambient=float(rng.uniform(0.25, 0.45)),
        window=window,
        sky_colors=(np.array([0.95, 0.97, 1.0]) * rng.uniform(0.85, 1.0),
                    np.array([0.45, 0.65, 0.95]) * rng.uniform(0.8, 1.0)),
        num_figures=figures,
        noise_sigma=float(rng.uniform(0.0, 0.025)) if noise else 0.0,
        noise_seed=int(rng.integers(1 << 31)))
