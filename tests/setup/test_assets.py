"""Where the asset store is, and how commands find their files (flag > store > ./data)."""

from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest

from pare_studio.assets import (
    AssetStore,
    default_data_root,
    resolve_model_paths,
    resolve_yolo_weights,
)
from pare_studio.errors import AssetError
from tests.setup.conftest import populate


def test_root_order_flag_env_platform(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PARE_STUDIO_DATA", raising=False)
    assert default_data_root() == Path(platformdirs.user_data_dir("pare-studio", appauthor=False))
    monkeypatch.setenv("PARE_STUDIO_DATA", str(tmp_path / "env"))
    assert AssetStore.default().root == tmp_path / "env"
    assert AssetStore.default(tmp_path / "flag").root == tmp_path / "flag"


def test_store_layout_is_a_valid_smpl_dir(store: AssetStore) -> None:
    from pare_studio.core.smpl_io import SmplFiles

    populate(store.root)
    files = SmplFiles.from_dir(store.root)
    assert files.model == store.root / "body_models/smpl/SMPL_NEUTRAL.npz"
    assert files.j_regressor_extra == store.root / "J_regressor_extra.npy"


def test_nothing_installed_names_everything_and_the_commands(store: AssetStore) -> None:
    with pytest.raises(AssetError) as err:
        resolve_model_paths()
    msg = str(err.value)
    assert "pare/checkpoints/pare_w_3dpw_checkpoint.ckpt" in msg
    assert "pare_w_3dpw_config.yaml" in msg
    assert "SMPL_NEUTRAL" in msg and "J_regressor_extra.npy" in msg
    assert (
        "`pare-studio setup`" in msg
        and "`pare-studio setup --smpl /path/to/SMPL_NEUTRAL.pkl`" in msg
    )
    assert str(store.root) in msg


def test_only_smpl_missing_is_reported_alone(store: AssetStore) -> None:
    populate(store.root, smpl=False)
    with pytest.raises(AssetError) as err:
        resolve_model_paths()
    msg = str(err.value)
    assert "SMPL neutral model" in msg and "--smpl" in msg
    assert "checkpoint.ckpt" not in msg


def test_store_is_used_with_no_flags(store: AssetStore) -> None:
    populate(store.root)
    paths = resolve_model_paths()
    assert paths.ckpt == store.root / "pare/checkpoints/pare_w_3dpw_checkpoint.ckpt"
    assert paths.cfg == store.root / "pare/checkpoints/pare_w_3dpw_config.yaml"
    assert paths.smpl_dir == store.root
    assert paths.sources == {"ckpt": "store", "cfg": "store", "smpl_dir": "store"}
    other = resolve_model_paths(model="pare")
    assert other.ckpt.name == "pare_checkpoint.ckpt" and other.cfg.name == "pare_config.yaml"
    assert resolve_yolo_weights() == store.root / "yolov3.weights"


def test_reference_data_folder_is_the_fallback(store: AssetStore) -> None:
    ref = populate(Path.cwd() / "data")
    paths = resolve_model_paths()
    assert paths.ckpt == ref / "pare/checkpoints/pare_w_3dpw_checkpoint.ckpt"
    assert paths.smpl_dir == ref
    assert paths.sources["ckpt"] == "./data" and paths.sources["smpl_dir"] == "./data"
    assert resolve_yolo_weights() == ref / "yolov3.weights"
    populate(store.root)  # the store wins once it has the files
    assert resolve_model_paths().smpl_dir == store.root


def test_mixed_sources_take_each_file_where_it_is(store: AssetStore) -> None:
    populate(store.root, smpl=False)
    ref = populate(Path.cwd() / "data")
    paths = resolve_model_paths()
    assert paths.ckpt.is_relative_to(store.root)
    assert paths.smpl_dir == ref


def test_flags_win_and_a_checkpoint_brings_its_yaml(store: AssetStore, tmp_path: Path) -> None:
    populate(store.root)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "best_checkpoint.ckpt").write_bytes(b"x")
    paths = resolve_model_paths(ckpt=mine / "best_checkpoint.ckpt")
    assert paths.cfg is None and paths.sources["cfg"] == "released defaults"
    (mine / "best_config.yaml").write_text("METHOD: pare\n")
    paths = resolve_model_paths(ckpt=mine / "best_checkpoint.ckpt")
    assert paths.cfg == mine / "best_config.yaml" and paths.sources["cfg"] == "next to --ckpt"
    paths = resolve_model_paths(cfg=tmp_path / "c.yaml", smpl_dir=tmp_path / "s")
    assert paths.cfg == tmp_path / "c.yaml" and paths.smpl_dir == tmp_path / "s"
    assert paths.ckpt.is_relative_to(store.root)
    assert resolve_yolo_weights(tmp_path / "y.weights") == tmp_path / "y.weights"


def test_yolo_weights_in_torch_home_are_found(store: AssetStore) -> None:
    with pytest.raises(AssetError, match=r"yolov3.weights.*pare-studio setup"):
        resolve_yolo_weights()
    legacy = Path("~/.torch/models/yolov3.weights").expanduser()
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"x")
    assert resolve_yolo_weights() == legacy


def test_unknown_model_is_an_asset_error(store: AssetStore) -> None:
    with pytest.raises(AssetError, match="pare_w_3dpw, pare"):
        resolve_model_paths(model="hmr")


def test_assets_module_imports_only_stdlib_and_platformdirs() -> None:
    import subprocess
    import sys

    code = (
        "import sys; before = set(sys.modules); import pare_studio.assets; "
        "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
        "print(sorted(new & {'torch', 'numpy', 'PySide6', 'vispy', 'yaml', 'cv2', 'av'}))"
    )
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_official_smpl_file_name_is_accepted_like_the_core_does(store: AssetStore) -> None:
    from pare_studio.core.smpl_io import SmplFiles

    ref = populate(Path.cwd() / "data", smpl=False)
    official = ref / "body_models/smpl/basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
    official.parent.mkdir(parents=True)
    official.write_bytes(b"x")
    (ref / "body_models/smpl/basicmodel_m_lbs_10_207_0_v1.1.0.pkl").write_bytes(b"x")
    assert resolve_model_paths().smpl_dir == ref
    assert AssetStore(ref).smpl_model_path("neutral") == official == SmplFiles.from_dir(ref).model
    assert AssetStore(ref).smpl_model_path("male").name == "basicmodel_m_lbs_10_207_0_v1.1.0.pkl"
    assert AssetStore(ref).smpl_model_path("female") is None
