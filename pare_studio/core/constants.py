"""Fixed numbers of PARE: joint orders and maps, camera constants, image normalisation.

Everything here is plain Python / tuples (no numpy, no torch) so any layer can import it cheaply.
Values follow the reference's ``pare/core/constants.py`` as described in spec §3.3.
"""

from __future__ import annotations

#: Focal length (pixels) of the fixed perspective camera of PARE / SPIN.
FOCAL_LENGTH: float = 5000.0

#: Side of the square network input crop, pixels.
IMG_RES: int = 224

#: ImageNet normalisation applied to RGB images in [0, 1].
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: Number of vertices / faces / kinematic joints / pose-blend-shape coefficients of SMPL.
SMPL_NUM_VERTICES: int = 6890
SMPL_NUM_FACES: int = 13776
SMPL_NUM_JOINTS: int = 24
SMPL_NUM_BETAS: int = 10
SMPL_NUM_POSE_BASIS: int = 207

#: The 24 SMPL kinematic joints, in model order.
SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hand",
    "right_hand",
)

#: Parent of each SMPL joint (-1 for the root), the real SMPL kinematic tree.
# fmt: off
SMPL_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)
# fmt: on

#: Vertex ids of the 21 extra "vertex joints" smplx appends after the 24 kinematic joints
#: (``smplx.vertex_ids['smplh']`` in VertexJointSelector order): nose, reye, leye, rear, lear,
#: LBigToe, LSmallToe, LHeel, RBigToe, RSmallToe, RHeel, then the fingertips of the left hand
#: (thumb, index, middle, ring, pinky) and of the right hand.
# fmt: off
SMPL_VERTEX_JOINT_IDS: tuple[int, ...] = (
    332, 6260, 2800, 4071, 583,
    3216, 3226, 3387, 6617, 6624, 6787,
    2746, 2319, 2445, 2556, 2673,
    6191, 5782, 5905, 6016, 6133,
)
# fmt: on

#: The same ids by smplx name (the ``vertex_ids`` argument of smplx's SMPL layer).
SMPL_VERTEX_IDS: dict[str, int] = {
    "nose": 332,
    "reye": 6260,
    "leye": 2800,
    "rear": 4071,
    "lear": 583,
    "rthumb": 6191,
    "rindex": 5782,
    "rmiddle": 5905,
    "rring": 6016,
    "rpinky": 6133,
    "lthumb": 2746,
    "lindex": 2319,
    "lmiddle": 2445,
    "lring": 2556,
    "lpinky": 2673,
    "LBigToe": 3216,
    "LSmallToe": 3226,
    "LHeel": 3387,
    "RBigToe": 6617,
    "RSmallToe": 6624,
    "RHeel": 6787,
}

#: The 9 joints of ``J_regressor_extra.npy`` (rows, in order); they are joints 45..53 of the
#: 54-joint array (24 SMPL + 21 vertex joints + these 9).
EXTRA_JOINT_NAMES: tuple[str, ...] = (
    "Right Hip",
    "Left Hip",
    "Neck (LSP)",
    "Top of Head (LSP)",
    "Pelvis (MPII)",
    "Thorax (MPII)",
    "Spine (H36M)",
    "Jaw (H36M)",
    "Head (H36M)",
)

#: The 49 PARE joints: 25 OpenPose BODY_25 joints, then the 24 "ground-truth" joints.
JOINT_NAMES: tuple[str, ...] = (
    "OP Nose",
    "OP Neck",
    "OP RShoulder",
    "OP RElbow",
    "OP RWrist",
    "OP LShoulder",
    "OP LElbow",
    "OP LWrist",
    "OP MidHip",
    "OP RHip",
    "OP RKnee",
    "OP RAnkle",
    "OP LHip",
    "OP LKnee",
    "OP LAnkle",
    "OP REye",
    "OP LEye",
    "OP REar",
    "OP LEar",
    "OP LBigToe",
    "OP LSmallToe",
    "OP LHeel",
    "OP RBigToe",
    "OP RSmallToe",
    "OP RHeel",
    "Right Ankle",
    "Right Knee",
    "Right Hip",
    "Left Hip",
    "Left Knee",
    "Left Ankle",
    "Right Wrist",
    "Right Elbow",
    "Right Shoulder",
    "Left Shoulder",
    "Left Elbow",
    "Left Wrist",
    "Neck (LSP)",
    "Top of Head (LSP)",
    "Pelvis (MPII)",
    "Thorax (MPII)",
    "Spine (H36M)",
    "Jaw (H36M)",
    "Head (H36M)",
    "Nose",
    "Left Eye",
    "Right Eye",
    "Left Ear",
    "Right Ear",
)

#: For each of the 49 PARE joints, its index in the 54-joint array
#: (24 SMPL joints, 21 vertex joints, 9 ``J_regressor_extra`` joints).
# fmt: off
JOINT_MAP: tuple[int, ...] = (
    24, 12, 17, 19, 21, 16, 18, 20, 0, 2, 5, 8, 1, 4, 7, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34,
    8, 5, 45, 46, 4, 7, 21, 19, 17, 16, 18, 20, 47, 48, 49, 50, 51, 52, 53, 24, 26, 25, 28, 27,
)
# fmt: on

#: Number of PARE joints (len(JOINT_MAP)).
NUM_JOINTS: int = 49

#: Rows of ``J_regressor_h36m @ vertices`` (17 H36M joints) that give the 17 / 14 LSP-order
#: evaluation joints. H36M joint 0 is the pelvis (the root for MPJPE alignment).
H36M_TO_J17: tuple[int, ...] = (6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10, 0, 7, 9)
H36M_TO_J14: tuple[int, ...] = H36M_TO_J17[:14]

#: Rows of the 24 "ground-truth" joints (PARE joints 25..48) that give the 14 eval joints.
J24_TO_J14: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 18)

#: Names of the 14 evaluation joints (LSP order).
J14_NAMES: tuple[str, ...] = (
    "rankle",
    "rknee",
    "rhip",
    "lhip",
    "lknee",
    "lankle",
    "rwrist",
    "relbow",
    "rshoulder",
    "lshoulder",
    "lelbow",
    "lwrist",
    "neck",
    "headtop",
)

#: H36M joint index of the pelvis (root used to align MPJPE).
H36M_PELVIS: int = 0
