"""The docs stay honest: generated blocks match the code, every command shown exists, links resolve.

Commands are read from the shell code blocks (```bash, ```sh, ```shell, ```console or no language)
of README.md and docs/*.md and checked without running anything heavy:
- `convert <sub>`, `python -m converter <sub>`, `ros2 run trt_infer convert <sub>`: parsed by the real
  argparse parser of converter/cli.py (sub-command, every option spelt out exactly, choices, types,
  required arguments);
- `ros2 run trt_infer <exe>`: <exe> is a console script of setup.py; its arguments are checked like
  the module's (below);
- `python -m <module>` / `python <script>.py`: the module or script exists; its options appear in its
  `--help`; the node's ROS arguments (`-p name:=value`, `--params-file`, `-r`) name declared parameters
  with acceptable values, existing files and the node's topics;
- `ros2 launch trt_infer <file> name:=value`: the launch file exists and declares each argument;
- `ros2 param set /trt_infer <name> <value>`: a declared, run-time changeable parameter, valid value;
- `bash tools/x.sh`: the script exists; any argument naming a file of the repository must exist.
Commands of other programs (git, colcon, source, sudo ...) are not checked.
"""
import ast
import functools
import glob
import os
import re
import shlex
import subprocess
import sys

import pytest

pytest.importorskip("onnx", reason="the docs generator reads converter.fixes, which needs onnx (host .venv); "
                                   "the Python 3.6 venv has none")
yaml = pytest.importorskip("yaml", reason="node parameter values are read as YAML")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))

import generate_docs  # noqa: E402
from trt_infer.ros import parameters  # noqa: E402

SHELL_LANGUAGES = ("", "bash", "sh", "shell", "console")
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
                   re.DOTALL | re.MULTILINE)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
SEPARATORS = ("&&", "||", ";", "|")
PYTHONS = re.compile(r"^(.*/)?python(3(\.\d+)?)?$")
REPO_DIRS = ("config", "launch", "tools", "docs", "converter", "trt_infer", "tests", "resource")
NODE_MODULE = "trt_infer.ros.node"
CONVERTER_MODULES = ("converter", "converter.cli")


def doc_files():
    files = sorted(glob.glob(os.path.join(REPO_ROOT, "docs", "*.md")))
    readme = os.path.join(REPO_ROOT, "README.md")
    return ([readme] if os.path.isfile(readme) else []) + files


def relative(path):
    return os.path.relpath(path, REPO_ROOT)


# -- reading commands out of Markdown -------------------------------------------------------------
def shell_blocks(text):
    """Bodies of the shell code blocks of a Markdown text, dedented."""
    for match in FENCE.finditer(text):
        if match.group("lang").lower() in SHELL_LANGUAGES:
            indent = len(match.group("indent"))
            yield "\n".join(line[indent:] for line in match.group("body").splitlines())


def shell_commands(block):
    """Word lists of the simple commands in a shell block: continuations joined, comments, prompts and
    leading VAR=value assignments dropped, split at && || ; |."""
    text = re.sub(r"\\\n", " ", block)
    for line in text.splitlines():
        line = re.sub(r"^\s*\$ ", "", line)
        try:
            words = shlex.split(line, comments=True)
        except ValueError as error:
            yield ["<unparsable>", line, str(error)]
            continue
        command = []
        for word in words + [";"]:
            if word in SEPARATORS:
                while command and re.match(r"^[A-Za-z_]\w*=", command[0]):
                    command.pop(0)
                if command:
                    yield command
                command = []
            else:
                command.append(word)


def documented_commands(path):
    with open(path) as handle:
        text = handle.read()
    for block in shell_blocks(text):
        for words in shell_commands(block):
            yield words


# -- what exists -----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def console_scripts():
    """{script name: module} from setup.py's console_scripts, read with ast."""
    path = os.path.join(REPO_ROOT, "setup.py")
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    scripts = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = re.match(r"^\s*([\w.-]+)\s*=\s*([\w.]+):\w+\s*$", node.value)
            if match:
                scripts[match.group(1)] = match.group(2)
    return scripts


@functools.lru_cache(maxsize=None)
def convert_parser():
    """converter/cli.py's parser, raising ValueError instead of exiting on a bad command line."""
    from converter.cli import build_parser

    def refuse(message):
        raise ValueError(message)

    parser = build_parser()
    parser.error = refuse
    subparsers = next(action for action in parser._actions if action.dest == "command").choices
    for sub in subparsers.values():
        sub.error = refuse
    return parser, subparsers


def module_file(module):
    """The repository file of a module (package __main__ for packages), or None."""
    base = os.path.join(REPO_ROOT, *module.split("."))
    for candidate in (base + ".py", os.path.join(base, "__main__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


@functools.lru_cache(maxsize=None)
def help_options(command):
    """Option strings printed by `python <command...> --help` (command: tuple of words)."""
    result = subprocess.run([sys.executable] + list(command) + ["--help"], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError("`python {} --help` failed:\n{}".format(" ".join(command), result.stdout[-2000:]))
    return frozenset(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", result.stdout))


@functools.lru_cache(maxsize=None)
def node_topics():
    """Topic names the node creates publishers / subscriptions for, from its publisher plan."""
    from trt_infer.ros.config import NodeConfig
    from trt_infer.ros.plan import PUBLISHES, publisher_plan
    from trt_infer.spec import load_spec

    spec = load_spec(os.path.join(REPO_ROOT, "config", "models", "blazeface.yaml"))
    topics = set()
    for compressed in (False, True):
        config = NodeConfig({"compressed_input": compressed}, spec)
        for publishes in PUBLISHES:
            plan = publisher_plan(publishes, config)
            topics.update(plan.topics() + [plan.labels.topic, plan.labels_fallback.topic, plan.subscription.topic])
    return topics


# -- checking one command --------------------------------------------------------------------------
def is_option(word):
    return word.startswith("-") and not re.match(r"^-\d", word) and word != "-"


def repo_path_problems(words):
    """Arguments that name a file of the repository (config/..., tools/...) which does not exist."""
    problems = []
    for word in words:
        for value in (word, word.partition(":=")[2], word.partition("=")[2]):
            first = value.split("/")[0]
            if "/" in value and first in REPO_DIRS and not any(char in value for char in "<>*$"):
                if not os.path.exists(os.path.join(REPO_ROOT, value)):
                    problems.append("{} does not exist in the repository".format(value))
    return problems


def check_convert(arguments):
    parser, subparsers = convert_parser()
    if not arguments:
        return ["`convert` without a sub-command"]
    if arguments[0] not in subparsers:
        return ["convert has no sub-command {!r} (it has {})".format(arguments[0], ", ".join(subparsers))]
    known = set(option for action in subparsers[arguments[0]]._actions for option in action.option_strings)
    problems = ["convert {} has no option {}".format(arguments[0], word.split("=")[0]) for word in arguments[1:]
                if is_option(word) and word.split("=")[0] not in known]
    if not problems:
        try:
            parser.parse_args(arguments)
        except ValueError as error:
            problems.append("convert {}: {}".format(arguments[0], error))
    return problems


def check_node_arguments(arguments):
    """ROS arguments of trt_infer_node: --ros-args, -p name:=value, --params-file, -r from:=to."""
    problems = []
    words = list(arguments)
    if words and words[0] == "--ros-args":
        words.pop(0)
    elif words:
        return ["the node takes only ROS arguments, after --ros-args; got {}".format(words[0])]
    while words:
        flag = words.pop(0)
        value = words.pop(0) if words and flag in ("-p", "--param", "--params-file", "-r", "--remap") else None
        if flag in ("-p", "--param"):
            name, _, text = (value or "").partition(":=")
            param = parameters.BY_NAME.get(name)
            if param is None:
                problems.append("-p {}: the node declares no parameter {!r}".format(value, name))
            elif param.problem(yaml.safe_load(text)):
                problems.append("-p {}: {}".format(value, param.problem(yaml.safe_load(text))))
        elif flag == "--params-file":
            if not os.path.isfile(os.path.join(REPO_ROOT, value or "")) and "/" in (value or "") \
                    and value.split("/")[0] in REPO_DIRS:
                problems.append("--params-file {} does not exist".format(value))
        elif flag in ("-r", "--remap"):
            source = (value or "").partition(":=")[0]
            if source not in node_topics() and source not in ("__ns", "__node"):
                problems.append("-r {}: the node has no topic {!r} (it has {})".format(
                    value, source, ", ".join(sorted(node_topics()))))
        else:
            problems.append("unknown ROS argument {}".format(flag))
    return problems


def check_module_arguments(module, arguments):
    if module in CONVERTER_MODULES:
        return check_convert(arguments)
    path = module_file(module)
    if path is None:
        return ["python -m {}: no such module in the repository".format(module)]
    if module == NODE_MODULE:
        return check_node_arguments(arguments)
    return check_options(("-m", module), path, arguments)


def check_options(command, path, arguments):
    before_ros = arguments[:arguments.index("--ros-args")] if "--ros-args" in arguments else arguments
    options = [word.split("=")[0] for word in before_ros if is_option(word)]
    if not options:
        return []
    with open(path) as handle:
        if "argparse" not in handle.read():
            return ["{} takes no options, but the docs pass {}".format(relative(path), ", ".join(options))]
    known = help_options(tuple(command))
    return ["{} has no option {}".format(" ".join(command), option) for option in options if option not in known]


def check_launch(arguments):
    if not arguments:
        return ["ros2 launch trt_infer without a launch file"]
    path = os.path.join(REPO_ROOT, "launch", arguments[0])
    if not os.path.isfile(path):
        return ["launch/{} does not exist".format(arguments[0])]
    declared = [name for name, _, _ in generate_docs.launch_arguments(path)]
    problems = []
    for word in arguments[1:]:
        name, separator, _ = word.partition(":=")
        if not separator:
            problems.append("launch argument {!r} is not NAME:=VALUE".format(word))
        elif name not in declared:
            problems.append("{} declares no launch argument {!r} (it declares {})".format(
                arguments[0], name, ", ".join(declared)))
    return problems


def check_param_set(arguments):
    if len(arguments) < 3:
        return ["ros2 param set needs NODE NAME VALUE"]
    node, name, value = arguments[0], arguments[1], " ".join(arguments[2:])
    if node.rstrip("/").split("/")[-1] != "trt_infer":
        return []
    param = parameters.BY_NAME.get(name)
    if param is None:
        return ["ros2 param set: the node declares no parameter {!r}".format(name)]
    if not param.runtime:
        return ["ros2 param set: {} is read-only at run time".format(name)]
    problem = param.problem(yaml.safe_load(value))
    return ["ros2 param set: " + problem] if problem else []


def check_command(words):
    """Problems with one documented command ([] when it exists as shown or is not ours)."""
    if words[0] == "<unparsable>":
        return ["cannot parse {!r}: {}".format(words[1], words[2])]
    if words[0] == "sudo":
        words = words[1:]
    program, arguments = words[0], words[1:]
    problems = repo_path_problems(arguments)
    if program == "ros2" and arguments[:2] and arguments[0] == "run" and arguments[1:2] == ["trt_infer"]:
        if len(arguments) < 3 or arguments[2] not in console_scripts():
            return problems + ["ros2 run trt_infer {}: no such console script in setup.py (there are {})".format(
                (arguments[2:3] or ["(none)"])[0], ", ".join(sorted(console_scripts())))]
        return problems + check_module_arguments(console_scripts()[arguments[2]], arguments[3:])
    if program == "ros2" and arguments[:2] == ["launch", "trt_infer"]:
        return problems + check_launch(arguments[2:])
    if program == "ros2" and arguments[:2] == ["param", "set"]:
        return problems + check_param_set(arguments[2:])
    if program == "convert":
        return problems + check_convert(arguments)
    if program in console_scripts():
        return problems + check_module_arguments(console_scripts()[program], arguments)
    if PYTHONS.match(program) and arguments[:1] == ["-m"] and len(arguments) > 1:
        module = arguments[1]
        if module.split(".")[0] not in ("converter", "trt_infer", "tools", "tests"):
            return problems  # pytest, pip, venv ...: not ours
        return problems + check_module_arguments(module, arguments[2:])
    if PYTHONS.match(program) and arguments and arguments[0].endswith(".py"):
        script = os.path.join(REPO_ROOT, arguments[0])
        if not os.path.isfile(script):
            return problems + ["{} does not exist".format(arguments[0])]
        return problems + check_options((arguments[0],), script, arguments[1:])
    if program in ("bash", "sh") and arguments and arguments[0].endswith(".sh") or program.endswith(".sh"):
        script = arguments[0] if program in ("bash", "sh") else program
        if not os.path.isfile(os.path.join(REPO_ROOT, script)):
            return problems + ["{} does not exist".format(script)]
    return problems


def check_markdown_commands(text):
    problems = []
    for block in shell_blocks(text):
        for words in shell_commands(block):
            problems.extend("`{}`: {}".format(" ".join(words), problem) for problem in check_command(words))
    return problems


# -- links -----------------------------------------------------------------------------------------
def slug(heading):
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path):
    with open(path) as handle:
        text = FENCE.sub("", handle.read())
    return set(slug(match) for match in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.MULTILINE))


def link_problems(path):
    with open(path) as handle:
        text = FENCE.sub("", handle.read())
    problems = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        file_part, _, anchor = target.partition("#")
        linked = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
        if not os.path.exists(linked):
            problems.append("{}: link to {} but {} does not exist".format(relative(path), target, relative(linked)))
        elif anchor and linked.endswith(".md") and anchor not in anchors(linked):
            problems.append("{}: link to {}: no heading with anchor #{} in {}".format(
                relative(path), target, anchor, relative(linked)))
    return problems


# -- the tests -------------------------------------------------------------------------------------
def test_generated_blocks_match_the_code():
    stale = generate_docs.outdated()
    assert not stale, "out of date: {}; run python tools/generate_docs.py".format(
        ", ".join(path for path, _ in stale))


def test_generate_docs_check_exit_status():
    result = subprocess.run([sys.executable, "tools/generate_docs.py", "--check"], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    assert result.returncode == 0, result.stdout


def _table_names(text, block):
    body = re.search(r"<!-- generated:{0} -->\n(.*?)<!-- /generated:{0} -->".format(re.escape(block)), text,
                     re.DOTALL).group(1)
    return [re.match(r"\| `([^`]+)`", line).group(1) for line in body.splitlines()[2:] if line.startswith("| `")]


def test_node_doc_lists_exactly_the_declared_parameters():
    with open(os.path.join(REPO_ROOT, "docs", "node.md")) as handle:
        text = handle.read()
    assert _table_names(text, "parameters") == parameters.declared_names()
    assert parameters.markdown_table() in text


def test_spec_doc_lists_every_schema_key():
    with open(os.path.join(REPO_ROOT, "docs", "model_specs.md")) as handle:
        text = handle.read()
    documented = set()
    for section, _, name in generate_docs._spec_sections():
        documented.update(_table_names(text, "spec-" + name))
    assert documented == generate_docs.documented_spec_paths()


def test_a_stale_generated_block_is_detected_and_regenerated():
    with open(os.path.join(REPO_ROOT, "docs", "node.md")) as handle:
        text = handle.read()
    row = next(line for line in text.splitlines() if line.startswith("| `score_threshold`"))
    stale = text.replace(row + "\n", "").replace("| `backend` | str | auto", "| `backend` | str | tensorrt")
    assert stale != text
    assert generate_docs.render(stale, generate_docs.blocks(), "node.md") == text


def test_an_unknown_or_unclosed_block_is_an_error():
    registry = generate_docs.blocks()
    with pytest.raises(generate_docs.DocsError, match="unknown generated block 'nonsense'"):
        generate_docs.render("<!-- generated:nonsense -->\n<!-- /generated:nonsense -->\n", registry, "x.md")
    with pytest.raises(generate_docs.DocsError, match="no matching"):
        generate_docs.render("<!-- generated:parameters -->\n| a |\n", registry, "x.md")


def test_every_spec_key_is_described_by_its_own_field():
    assert not hasattr(generate_docs, "SPEC_NOTES"), "spec key descriptions live in Field(doc=...)"
    for section, schema, _ in generate_docs._spec_sections():
        for key, field in schema.items():
            assert field.doc, "{}.{} has no Field doc".format(section, key)


def test_a_spec_key_without_a_doc_is_an_error():
    from trt_infer.schema import Field

    with pytest.raises(generate_docs.DocsError, match=r"spec key toy.size has no description"):
        generate_docs.spec_table("toy", {"size": Field(int)})


def test_task_sections_and_the_task_list_come_from_the_table():
    from trt_infer import tasks

    with open(os.path.join(REPO_ROOT, "docs", "model_specs.md")) as handle:
        text = handle.read()
    outputs = _table_names(text, "task-outputs")
    assert outputs == list(tasks.task_names())
    for task in tasks.TASKS:
        heading = generate_docs._section_heading(task.name)
        block = generate_docs.blocks()["spec-" + heading]()
        assert block.startswith("## {}\n".format(heading))
        assert " ".join(tasks.get_task(heading).doc.split()) in " ".join(block.split())
    assert generate_docs._section_heading("batched_nms") == "efficient_nms"


@pytest.mark.parametrize("path", doc_files(), ids=relative)
def test_every_documented_command_exists(path):
    with open(path) as handle:
        text = handle.read()
    problems = check_markdown_commands(text)
    assert not problems, "{}:\n  ".format(relative(path)) + "\n  ".join(problems)


def test_docs_show_commands_of_every_kind_the_checker_knows():
    """The checker is exercised by the docs themselves, not only by the fake commands below."""
    commands = [" ".join(words) for path in doc_files() for words in documented_commands(path)]
    for prefix in ("python -m converter all", "python -m converter fix", "python -m converter check",
                   "python -m converter verify", "python -m converter inspect", "python -m converter export",
                   "ros2 run trt_infer convert build", "ros2 launch trt_infer nano.launch.py",
                   "ros2 run trt_infer trt_infer_node", "python -m trt_infer.ros.replay", "ros2 param set"):
        assert any(command.startswith(prefix) for command in commands), prefix


FAKE_COMMANDS = [
    ("python -m converter buld model.onnx", "no sub-command 'buld'"),
    ("convert build model.onnx --precisionn fp16", "has no option --precisionn"),
    ("ros2 run trt_infer convert check model.onnx --target jetson-tx2", "invalid choice"),
    ("python -m converter all model.tflite --target jetson-nano", "required"),
    ("python -m converter build model.onnx --prec fp16", "has no option --prec"),
    ("ros2 run trt_infer build_engine model.onnx", "no such console script"),
    ("ros2 launch trt_infer nano.launch.py engine:=model.engine", "declares no launch argument 'engine'"),
    ("ros2 launch trt_infer jetson.launch.py", "launch/jetson.launch.py does not exist"),
    ("bash tools/no_such_script.sh", "tools/no_such_script.sh does not exist"),
    ("python -m trt_infer.ros.replay skimage:astronaut --fps 10", "has no option --fps"),
    ("python -m trt_infer.no_such_module --help", "no such module"),
    ("ros2 run trt_infer trt_infer_node --ros-args -p score_treshold:=0.3", "declares no parameter"),
    ("ros2 run trt_infer trt_infer_node --ros-args -p backend:=cuda", "must be one of"),
    ("python -m trt_infer.ros.node --ros-args -r camera:=/camera/image_raw", "no topic 'camera'"),
    ("ros2 param set /trt_infer backend onnxruntime", "read-only at run time"),
    ("ros2 param set /trt_infer score_threshold 1.5", "between"),
    ("python -m converter fix model.onnx --spec config/models/no_such_model.yaml", "does not exist"),
    ("python tools/no_such_tool.py --check", "does not exist"),
    ("python tools/generate_docs.py --fix", "has no option --fix"),
]


@pytest.mark.parametrize("command, expected", FAKE_COMMANDS, ids=[command for command, _ in FAKE_COMMANDS])
def test_the_checker_rejects_made_up_commands(command, expected):
    problems = check_markdown_commands("```bash\n{}\n```\n".format(command))
    assert any(expected in problem for problem in problems), problems


def test_the_checker_accepts_real_commands_in_every_form():
    text = """```bash
$ python -m converter check model.onnx --target trt10 --json   # a comment
cd /tmp && ros2 run trt_infer convert build m.onnx -o m.engine \\
    --precision fp16 --workspace 128 --profile input:1x3x224x224/1x3x320x320/1x3x640x640
ros2 run trt_infer trt_infer_node --ros-args --params-file config/detector.yaml -p score_threshold:=0.3
ros2 launch trt_infer nano.launch.py model_config:=config/segmenter.yaml camera_topic:=/cam
AMENT_PREFIX_PATH=.venv .venv/bin/python -m trt_infer.ros.replay skimage:astronaut --rate 5 --loop
git clone https://example.com/x.git && colcon build --packages-select trt_infer
```

  ```text
  convert buld ignored: not a shell block
  ```
"""
    assert check_markdown_commands(text) == []


@pytest.mark.parametrize("path", doc_files(), ids=relative)
def test_links_resolve(path):
    problems = link_problems(path)
    assert not problems, "\n".join(problems)


def test_the_link_checker_rejects_missing_files_and_anchors(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [gone](missing.md) [bad anchor](#nothing) [web](https://x.org)\n")
    problems = link_problems(str(page))
    assert len(problems) == 2
    assert "missing.md" in problems[0] and "#nothing" in problems[1]
