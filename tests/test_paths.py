"""trt_infer.paths.resolve_path against a fake installed prefix: <prefix>/share/trt_infer/config/...
with AMENT_PREFIX_PATH pointing at it and the working directory elsewhere, through the ament index
(when ament_index_python is installed) and through AMENT_PREFIX_PATH alone (when it is not); and
check_output, the write guard every command that writes uses."""
import os
import shutil
import subprocess
import sys

import pytest

from trt_infer import paths
from trt_infer.errors import SettingError

ONLY_INSTALLED = os.path.join("config", "models", "only_installed.yaml")
IN_THE_REPO = os.path.join("config", "models", "ssd_mobilenet_v2_coco.yaml")


def write(path, text=""):
    if not os.path.isdir(os.path.dirname(path)):
        os.makedirs(os.path.dirname(path))
    with open(path, "w") as handle:
        handle.write(text)


@pytest.fixture
def prefix(tmp_path, monkeypatch):
    """A fake install (with the ament index marker colcon writes) on AMENT_PREFIX_PATH, after a
    prefix without trt_infer; the working directory is an empty folder outside the repo."""
    root = tmp_path / "install"
    share = str(root / "share" / "trt_infer")
    write(os.path.join(share, ONLY_INSTALLED), "installed\n")
    write(os.path.join(share, IN_THE_REPO), "installed copy\n")
    write(str(root / "share" / "ament_index" / "resource_index" / "packages" / "trt_infer"))
    other = tmp_path / "other_prefix"
    (other / "share").mkdir(parents=True)
    monkeypatch.setenv("AMENT_PREFIX_PATH", os.pathsep.join([str(other), str(root)]))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(str(elsewhere))
    return share


@pytest.fixture(params=["ament_index", "AMENT_PREFIX_PATH"])
def lookup(request, monkeypatch):
    """Both ways to the share folder: ament_index_python, and the AMENT_PREFIX_PATH scan without it."""
    if request.param == "ament_index":
        pytest.importorskip("ament_index_python")
    else:
        monkeypatch.setitem(sys.modules, "ament_index_python", None)
        monkeypatch.setitem(sys.modules, "ament_index_python.packages", None)
    return request.param


def test_the_share_folder_is_found(prefix, lookup):
    assert os.path.realpath(paths.share_directory()) == os.path.realpath(prefix)


def test_a_file_only_installed_is_found_in_share(prefix, lookup):
    found = paths.resolve_path(ONLY_INSTALLED)
    assert os.path.realpath(found) == os.path.realpath(os.path.join(prefix, ONLY_INSTALLED))
    with open(found) as handle:
        assert handle.read() == "installed\n"


def test_the_installed_copy_is_used_when_no_source_tree(prefix, lookup, monkeypatch):
    monkeypatch.setattr(paths, "SOURCE_TREE", None)
    assert os.path.realpath(paths.resolve_path(IN_THE_REPO)) == os.path.realpath(os.path.join(prefix, IN_THE_REPO))


def test_the_source_tree_comes_before_share(prefix, lookup, repo_root):
    assert paths.SOURCE_TREE is not None
    assert os.path.realpath(paths.resolve_path(IN_THE_REPO)) == os.path.realpath(os.path.join(repo_root, IN_THE_REPO))


def test_the_working_directory_comes_first(prefix, lookup):
    write(ONLY_INSTALLED, "here\n")
    assert paths.resolve_path(ONLY_INSTALLED) == ONLY_INSTALLED


def test_a_file_found_nowhere_is_returned_as_given(prefix, lookup):
    missing = os.path.join("config", "models", "nowhere.yaml")
    assert paths.resolve_path(missing) == missing


def test_nothing_installed(tmp_path, monkeypatch, lookup):
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))
    monkeypatch.chdir(str(tmp_path))
    assert paths.share_directory() is None
    assert paths.resolve_path(ONLY_INSTALLED) == ONLY_INSTALLED
    monkeypatch.delenv("AMENT_PREFIX_PATH")
    assert paths.share_directory() is None


def test_home_absolute_and_empty_paths(tmp_path, monkeypatch, prefix):
    monkeypatch.setenv("HOME", str(tmp_path))
    write(str(tmp_path / "spec.yaml"))
    assert paths.resolve_path(os.path.join("~", "spec.yaml")) == str(tmp_path / "spec.yaml")
    absolute = str(tmp_path / "missing.yaml")
    assert paths.resolve_path(absolute) == absolute
    assert paths.resolve_path("") == ""


def test_an_installed_copy_has_no_source_tree(tmp_path):
    """Imported from site-packages (no package.xml next to it), SOURCE_TREE is None."""
    site_packages = tmp_path / "site-packages"
    (site_packages / "trt_infer").mkdir(parents=True)
    for name in ("__init__.py", "paths.py"):
        shutil.copy(os.path.join(os.path.dirname(paths.__file__), name), str(site_packages / "trt_infer" / name))
    code = "from trt_infer import paths; print(paths.__file__, paths.SOURCE_TREE)"
    result = subprocess.run([sys.executable, "-c", code],
                            cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=str(site_packages)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(site_packages / "trt_infer" / "paths.py"), "None"]


# --- check_output: nothing a command writes replaces one of its inputs --------------------------

@pytest.fixture
def model(tmp_path):
    path = str(tmp_path / "in.onnx")
    write(path, "model\n")
    return path


def test_a_new_output_beside_the_input_is_fine(tmp_path, model):
    paths.check_output(str(tmp_path / "out.onnx"), [model])
    paths.check_output(str(tmp_path / "new" / "deeper" / "out.onnx"), [model, None])   # folders made later
    write(str(tmp_path / "old.onnx"), "an earlier output\n")
    paths.check_output(str(tmp_path / "old.onnx"), [model])                           # not an input: replaced


@pytest.mark.parametrize("link", ["same path", "other spelling", "symlink", "hard link", "symlinked input"])
def test_an_output_that_is_an_input_is_refused_however_it_is_named(tmp_path, model, link):
    if link == "same path":
        output, inputs = model, [model]
    elif link == "other spelling":
        output, inputs = os.path.join(str(tmp_path), ".", "in.onnx"), [model]
    elif link == "symlink":
        output, inputs = str(tmp_path / "current.onnx"), [model]
        os.symlink(model, output)
    elif link == "hard link":
        output, inputs = str(tmp_path / "hard.onnx"), [model]
        os.link(model, output)
    else:
        output, inputs = model, [str(tmp_path / "alias.onnx")]
        os.symlink(model, inputs[0])
    with pytest.raises(SettingError) as raised:
        paths.check_output(output, inputs, option="-o/--output")
    message = str(raised.value)
    assert message.startswith("-o/--output {} is the input {} (the same file".format(output, inputs[0]))
    assert message.endswith("write to another path: inputs are never overwritten")
    assert ("through a symlink" in message) == (link == "symlink")
    assert ("a hard link" in message) == (link == "hard link")


def test_a_file_inside_an_input_folder_is_an_input(tmp_path):
    saved_model = tmp_path / "saved_model"
    write(str(saved_model / "variables" / "variables.index"), "weights\n")
    os.link(str(saved_model / "variables" / "variables.index"), str(tmp_path / "m.onnx"))
    with pytest.raises(SettingError, match="is the input .*variables.index"):
        paths.check_output(str(tmp_path / "m.onnx"), [str(saved_model)])


def test_the_wrong_kind_of_output_path_says_what_to_pass(tmp_path):
    write(str(tmp_path / "afile"), "x\n")
    with pytest.raises(SettingError) as raised:
        paths.check_output(str(tmp_path / "afile"), option="-o/--output-dir", folder=True)
    assert str(raised.value) == ("-o/--output-dir {0} is a file, not a folder; pass a folder to write into (it is "
                                 "created if missing), e.g. {0}_converted".format(tmp_path / "afile"))
    with pytest.raises(SettingError) as raised:
        paths.check_output(str(tmp_path / "afile" / "sub" / "m.engine"), example="model.engine")
    assert str(raised.value) == ("-o/--output {}: {} is a file, so no folder can be made there; choose a path in a "
                                 "folder".format(tmp_path / "afile" / "sub" / "m.engine", tmp_path / "afile"))
    with pytest.raises(SettingError) as raised:
        paths.check_output(str(tmp_path), example="model.engine")
    assert str(raised.value) == "-o/--output {} is a folder; pass the file to write, e.g. {}".format(
        tmp_path, tmp_path / "model.engine")
    paths.check_output(str(tmp_path), folder=True)


def test_the_error_class_is_the_callers(tmp_path, model):
    class OwnError(ValueError):
        pass

    with pytest.raises(OwnError):
        paths.check_output(model, [model], error=OwnError)
