"""Regenerate the parts of the docs that the code defines, so they cannot drift from it.

    python tools/generate_docs.py            # rewrite the generated blocks in place
    python tools/generate_docs.py --check    # exit 1 when a block differs from what the code says now

A generated block sits between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->` in a
Markdown file under docs/ (or README.md); everything outside the markers is written by hand and
left alone. The sources:

  parameters          trt_infer/ros/parameters.py (what the node declares)
  launch-arguments    launch/nano.launch.py (DeclareLaunchArgument calls, read with ast)
  statistics-keys     trt_infer/ros/stats.py fed two frames with the pipeline's stages
  spec-*              the schema Fields of trt_infer/spec.py, anchors.py, box_coding.py and postprocess/
  task-outputs        trt_infer/spec.py TASK_SECTIONS
  targets             converter/targets.py PROFILES
  fix-passes          converter/fixes PASS_NAMES and each pass's docstring (read with ast, nothing imported)
  check-rules         converter/check.py Finding(...) calls (rule name -> fix passes), read with ast
  convert-options     converter/cli.py build_parser(): every sub-command's options

Keys that a schema Field leaves without `doc` are described in SPEC_NOTES below; a note for a key
that no longer exists, or that now has its own `doc`, is an error, so the notes cannot go stale.
"""
import argparse
import ast
import os
import re
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

MARKER = re.compile(r"<!-- generated:(?P<name>[\w.-]+) -->\n(?P<body>.*?)<!-- /generated:(?P=name) -->",
                    re.DOTALL)
OPENING = re.compile(r"<!-- generated:([\w.-]+) -->")

# Where each block must appear (a block may also appear elsewhere).
REQUIRED_BLOCKS = {
    "docs/node.md": ("parameters", "launch-arguments", "statistics-keys"),
    "docs/model_specs.md": ("spec-top", "spec-input", "spec-thresholds", "task-outputs", "spec-ssd",
                            "spec-ssd.anchors", "spec-ssd.box_coding", "spec-ssd.nms", "spec-efficient_nms",
                            "spec-segmentation", "spec-classification"),
    "docs/converting.md": ("targets", "fix-passes", "check-rules", "convert-options"),
}

# Descriptions of spec keys whose Field has no `doc` (prefer adding `doc=` to the Field itself).
SPEC_NOTES = {
    "name": "model name, used in logs and the node's diagnostics",
    "task": "which post-processing runs (see the task sections below)",
    "description": "free text for people",
    "input": "the network input, see [input](#input)",
    "labels": "label file (one label per line, path relative to the spec file) or an inline list; "
              "index = class id",
    "palette": "one [R, G, B] colour per class for colour masks and overlays; null: a built-in palette",
    "thresholds": "detection thresholds, see [thresholds](#thresholds); the node's parameters override them",
    "input.width": "network input width in pixels",
    "input.height": "network input height in pixels",
    "input.layout": "tensor layout of the input",
    "input.scale": "pixel values (0..255) are multiplied by this first",
    "input.mean": "per-channel value subtracted after `scale`, in the network's channel order",
    "input.std": "per-channel divisor applied after `mean`",
    "input.resize": "stretch: resize to the input size; letterbox: keep the aspect ratio and pad",
    "input.dtype": "element type of the input tensor",
    "thresholds.score": "minimum score of a detection",
    "thresholds.nms_iou": "IoU above which NMS suppresses the lower-scoring box",
    "thresholds.max_detections": "most detections per frame",
    "ssd.anchors": "anchor (prior box) generator, see [ssd.anchors](#ssdanchors); required unless "
                   "box_coding.type is decoded",
    "ssd.box_coding": "how regressor values decode against the anchors, see [ssd.box_coding](#ssdbox_coding)",
    "ssd.score_activation": "sigmoid (TF OD API, MediaPipe), softmax over the classes (pytorch-ssd), none "
                            "(scores already probabilities)",
    "ssd.num_keypoints": "keypoints (x, y pairs) per box in the regressor row (BlazeFace: 6)",
    "ssd.nms": "non-maximum suppression, see [ssd.nms](#ssdnms)",
    "ssd.anchors.aspect_ratios": "width / height of the anchor shapes of every layer",
    "ssd.anchors.reduce_boxes_in_lowest_layer": "layer 0 gets the three shapes (0.1, 1), (s, 2), (s, 0.5) "
                                                "(TF OD API)",
    "ssd.anchors.anchor_offset_y": "anchor centre within its cell, 0..1",
    "segmentation.activation": "argmax over class channels; sigmoid of one logit channel; probability: "
                               "one channel already holding probabilities",
    "segmentation.logits_layout": "layout of the segmentation output",
    "classification.top_k": "number of best classes reported",
}

# spec section -> (block name, schema loader); nested dict fields get their own block.
def _spec_sections():
    from trt_infer import anchors, box_coding, spec
    from trt_infer.postprocess import classification, fused_nms, segmentation, ssd

    return [
        ("", spec.TOP_SCHEMA, "top"),
        ("input", spec.INPUT_SCHEMA, "input"),
        ("thresholds", spec.THRESHOLDS_SCHEMA, "thresholds"),
        ("ssd", ssd.SCHEMA, "ssd"),
        ("ssd.anchors", anchors.ANCHOR_SCHEMA, "ssd.anchors"),
        ("ssd.box_coding", box_coding.BOX_CODING_SCHEMA, "ssd.box_coding"),
        ("ssd.nms", ssd.NMS_SCHEMA, "ssd.nms"),
        ("efficient_nms", fused_nms.SCHEMA, "efficient_nms"),
        ("segmentation", segmentation.SCHEMA, "segmentation"),
        ("classification", classification.SCHEMA, "classification"),
    ]


class DocsError(Exception):
    """The docs or their sources are inconsistent; the message says where and what to do."""


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows)
    return "\n".join(lines)


# -- node ---------------------------------------------------------------------------------------
def parameters_block():
    from trt_infer.ros import parameters

    return parameters.markdown_table()


def _module_constants(tree):
    constants = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            constants.setdefault(node.targets[0].id, node.value)
    return constants


def _evaluate_path(node, constants):
    """The text of a launch-file default: strings, names bound to strings, os.path.join and the
    package's share folder; anything else is shown as its source."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and node.id in constants:
        return _evaluate_path(constants[node.id], constants)
    if isinstance(node, ast.Call):
        name = getattr(node.func, "attr", getattr(node.func, "id", ""))
        parts = [_evaluate_path(arg, constants) for arg in node.args]
        if name == "join":
            return "/".join(parts)
        if name == "get_package_share_directory":
            return "<share/{}>".format(parts[0])
    return ast.unparse(node)


def launch_arguments(path=None):
    """[(name, default text, description)] of the DeclareLaunchArgument calls in the launch file."""
    path = path or os.path.join(REPO_ROOT, "launch", "nano.launch.py")
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    constants = _module_constants(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == \
                "DeclareLaunchArgument":
            keywords = {keyword.arg: keyword.value for keyword in node.keywords}
            default = keywords.get("default_value")
            description = keywords.get("description")
            found.append((node.args[0].value,
                          None if default is None else _evaluate_path(default, constants),
                          "" if description is None else _evaluate_path(description, constants)))
    return found


def launch_arguments_block():
    rows = [("`{}:=`".format(name), "(empty)" if default == "" else "`{}`".format(default), description)
            for name, default, description in launch_arguments()]
    return _table(("argument", "default", "description"), rows)


def statistics_keys():
    """The keys one statistics message carries once frames flow, from FrameStats itself."""
    from trt_infer.pipeline import STAGES
    from trt_infer.ros.stats import FrameStats

    stats = FrameStats()
    stats.count("received", 2)
    timings = dict((stage, 0.001) for stage in STAGES)
    stats.processed(1.0, 0.002, 0.003, timings)
    stats.processed(1.1, 0.002, 0.003, timings)
    return sorted(stats.snapshot())


def _describe_statistic(key, described):
    """(position in `described`, meaning) of a statistics key."""
    for index, (prefix, meaning) in enumerate(described):
        if key == prefix or key.startswith(prefix + "_"):
            return index, meaning
    raise DocsError("statistics key {!r} has no description: add it to STATISTICS in "
                    "trt_infer/ros/stats.py".format(key))


def statistics_keys_block():
    from trt_infer.ros.stats import STATISTICS

    groups = {}
    for key in statistics_keys():
        stem = re.sub(r"_(median|p95|max)$", "", key)
        entry = "`{}`".format(stem) if stem == key else "`{}_{{median,p95,max}}`".format(stem)
        groups[entry] = _describe_statistic(key, STATISTICS)
    rows = sorted(groups.items(), key=lambda item: item[1][0])
    return _table(("key", "meaning"), [(entry, meaning) for entry, (_, meaning) in rows])


# -- model specs --------------------------------------------------------------------------------
def _kind_name(field):
    return {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "mapping"}.get(
        field.kind, "string or list")


def _constraints(field):
    """The limits a Field declares as data: its numeric bounds and its check's own words."""
    if field.check is not None and not field.check_doc:
        raise DocsError("a Field with a `check` has no `check_doc` to say its rule in the docs")
    return [text for text in (field.bounds() and "must be " + field.bounds(), field.check_doc) if text]


def _allowed(field, outer=True):
    """The accepted values of a Field in words: choices, element types, ranges, null."""
    if field.choices is not None:
        text = ", ".join("`{}`".format(_yaml_value(choice).strip('"')) for choice in field.choices)
    elif field.kind is list and field.item is not None:
        count = "{} x ".format(field.length) if field.length is not None else ""
        text = "list of {}{}".format(count, _allowed(field.item, outer=False))
    elif field.kind is dict:
        text = "mapping"
    elif field.kind is object:
        text = "file name or list of strings"
    else:
        text = {bool: "true/false", int: "integer", float: "number", str: "string"}[field.kind]
    constraints = _constraints(field) if field.kind is not object else []
    if constraints:
        text += " ({})".format("; ".join(constraints))
    if field.nullable and outer:
        text += ", or null"
    return text


def _yaml_value(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"{}"'.format(value)
    if isinstance(value, list):
        return "[" + ", ".join(_yaml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{}" if not value else repr(value)
    return repr(value)


def _default_text(field):
    if field.required:
        return "**required**"
    if field.kind is dict and field.schema is not None and field.default in ({}, None):
        return "(defaults below)" if field.default == {} else "null"
    return "`{}`".format(_yaml_value(field.default))


def spec_description(path, field):
    note = SPEC_NOTES.get(path)
    if field.doc and note:
        raise DocsError("spec key {} has a Field doc now; delete its SPEC_NOTES entry in "
                        "tools/generate_docs.py".format(path))
    description = field.doc or note
    if not description:
        raise DocsError("spec key {} has no description: give its Field a doc= or add it to SPEC_NOTES in "
                        "tools/generate_docs.py".format(path))
    return description


def spec_table(section, schema):
    rows = []
    for key, field in schema.items():
        path = "{}.{}".format(section, key) if section else key
        allowed = _allowed(field)
        if section == "" and key in _task_names():
            heading = _section_heading(key)
            allowed, description = "mapping", "settings of task `{}`, see [{}](#{})".format(
                key, heading, heading.replace(".", ""))
        else:
            description = spec_description(path, field)
        rows.append(("`{}`".format(path), _kind_name(field), _default_text(field), allowed, description))
    return _table(("key", "type", "default", "allowed", "description"), rows)


def _section_heading(task):
    """The spec section whose table documents a task's settings (batched_nms shares efficient_nms's)."""
    from trt_infer.spec import TASK_SECTIONS

    return "efficient_nms" if TASK_SECTIONS[task][0].endswith("fused_nms") else task


def _task_names():
    from trt_infer.spec import TASKS
    return TASKS


def spec_blocks():
    """{"spec-<section>": table} for every schema the runtime validates."""
    blocks = {}
    for section, schema, name in _spec_sections():
        blocks["spec-" + name] = (lambda section=section, schema=schema: spec_table(section, schema))
    return blocks


def documented_spec_paths():
    """Every key path the spec tables describe (for the notes' staleness check)."""
    paths = set()
    for section, schema, _ in _spec_sections():
        paths.update("{}.{}".format(section, key) if section else key for key in schema)
    return paths


def check_spec_notes():
    stale = sorted(set(SPEC_NOTES) - documented_spec_paths())
    if stale:
        raise DocsError("SPEC_NOTES in tools/generate_docs.py describes keys no schema has: {}; delete them".format(
            ", ".join(stale)))


def task_outputs_block():
    from trt_infer.spec import TASK_SECTIONS, TASKS

    rows = []
    for task in TASKS:
        module, roles = TASK_SECTIONS[task]
        rows.append(("`{}`".format(task), ", ".join("`{}`".format(role) for role in roles),
                     "`{}:`, keys as in [{}](#{})".format(task, _section_heading(task), _section_heading(task)),
                     "`{}`".format(module.replace(".", "/") + ".py")))
    return _table(("task", "`outputs:` roles (role -> tensor name)", "settings section",
                   "post-processing"), rows)


# -- converter ----------------------------------------------------------------------------------
def targets_block():
    from converter import targets

    rows = []
    for name, target in targets.PROFILES.items():
        uint8 = targets.REJECTED != target.dtype_rule("UINT8")
        rows.append(("`{}`".format(name), target.description, "{} - {}".format(*target.tensorrt),
                     "{} (exports at {})".format(target.max_opset, target.export_opset),
                     ", ".join(target.precisions), target.default_workspace_mib,
                     "yes" if uint8 else "no (cast to float)",
                     "yes" if target.reshape_allowzero_required else "no",
                     "yes" if target.static_shapes_required else "no", target.nms_plugin))
    return _table(("`--target`", "deployment", "TensorRT", "max opset", "precisions", "default workspace (MiB)",
                   "uint8 input", "Reshape needs allowzero", "static shapes", "NMS plugin"), rows)


def _first_sentence(docstring):
    text = " ".join((docstring or "").split())
    match = re.match(r"(.+?\.)(\s|$)", text)
    return match.group(1) if match else text


def fix_passes():
    """[(pass name, module, what it does)] in the order run_fixes runs them, from the passes' docstrings."""
    import importlib

    from converter.fixes import FINAL_PASS, PASSES

    rows = []
    for name, module in list(PASSES) + [FINAL_PASS]:
        source = importlib.import_module("converter.fixes." + module)
        function = getattr(source, "fix_" + name, None)
        if function is None:
            raise DocsError("converter/fixes/{}.py: no function fix_{} for pass {}".format(module, name, name))
        rows.append((name, module, _first_sentence(function.__doc__ or source.__doc__)))
    return rows


def fix_passes_block():
    return _table(("pass", "module", "what it repairs"),
                  [("`{}`".format(name), "`converter/fixes/{}.py`".format(module), what)
                   for name, module, what in fix_passes()])


def check_rules_block():
    from converter.check import RULES

    rows = [("`{}`".format(rule.name), rule.checks, ", ".join("`{}`".format(fix) for fix in rule.fixes) or
             "none: the finding says what to change in the model")
            for rule in RULES.values()]
    return _table(("rule (`convert check`)", "what it checks", "repaired by `convert fix` pass"), rows)


def _option_text(action):
    words = ", ".join("`{}`".format(option) for option in action.option_strings) or "`{}`".format(action.dest)
    if action.nargs == 0:
        return words
    value = action.metavar or ("{" + ",".join(str(choice) for choice in action.choices) + "}"
                               if action.choices else action.dest.upper())
    return "{} {}".format(words, value) if action.option_strings else words


# Help for `convert` arguments that converter/cli.py leaves without one, keyed by argparse dest
# (prefer help= in the parser: a note that no help-less argument uses any more is an error).
OPTION_NOTES = {
    "onnx": "ONNX file to read (never overwritten)",
    "source": "the model, as for `convert export`",
    "seed": "seed of the random inputs (default 0)",
    "json": "print the result as JSON",
    "precision": "engine precision of the build step (as for `convert build`)",
}


def _help_text(action, used_notes):
    text = action.help
    if not text and action.dest in OPTION_NOTES:
        text = OPTION_NOTES[action.dest]
        used_notes.add(action.dest)
    if not text:
        raise DocsError("convert argument {} has no help: add help= in converter/cli.py or an OPTION_NOTES "
                        "entry in tools/generate_docs.py".format("/".join(action.option_strings) or action.dest))
    if "%(" in text:
        text = text % dict(vars(action), prog="convert")
    extras = []
    if action.choices and action.option_strings:
        extras.append("one of " + ", ".join("`{}`".format(choice) for choice in action.choices))
    if action.required and action.option_strings:
        extras.append("required")
    if action.default not in (None, False, [], argparse.SUPPRESS) and action.option_strings \
            and "default" not in text:
        extras.append("default `{}`".format(action.default))
    return "; ".join([part for part in [text] + extras if part])


def convert_subparsers():
    from converter.cli import build_parser

    parser = build_parser()
    action = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return action.choices


def convert_options_block():
    sections, used_notes = [], set()
    for command, parser in convert_subparsers().items():
        rows = [(_option_text(action), _help_text(action, used_notes)) for action in parser._actions
                if not isinstance(action, argparse._HelpAction) and action.help != argparse.SUPPRESS]
        sections.append("#### `convert {}`\n\n{}\n\n{}".format(command, parser.description or _subcommand_help(command),
                                                               _table(("argument", "meaning"), rows)))
    unused = sorted(set(OPTION_NOTES) - used_notes)
    if unused:
        raise DocsError("OPTION_NOTES in tools/generate_docs.py describes {}, which every convert sub-command now "
                        "documents itself (or no longer has); delete those entries".format(", ".join(unused)))
    return "\n\n".join(sections)


def _subcommand_help(command):
    from converter.cli import build_parser

    parser = build_parser()
    action = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    for choice in action._choices_actions:
        if choice.dest == command:
            return choice.help[0].upper() + choice.help[1:] + "."
    return ""


# -- the blocks and the files -------------------------------------------------------------------
def blocks():
    """{block name: callable returning its Markdown}."""
    registry = {
        "parameters": parameters_block,
        "launch-arguments": launch_arguments_block,
        "statistics-keys": statistics_keys_block,
        "task-outputs": task_outputs_block,
        "targets": targets_block,
        "fix-passes": fix_passes_block,
        "check-rules": check_rules_block,
        "convert-options": convert_options_block,
    }
    registry.update(spec_blocks())
    return registry


def doc_files():
    """Markdown files that may hold generated blocks: docs/*.md and README.md."""
    docs = os.path.join(REPO_ROOT, "docs")
    files = [os.path.join(docs, name) for name in sorted(os.listdir(docs)) if name.endswith(".md")]
    readme = os.path.join(REPO_ROOT, "README.md")
    return files + ([readme] if os.path.isfile(readme) else [])


def render(text, registry, where):
    """`text` with every generated block replaced by what the code says now."""
    opened = OPENING.findall(text)
    closed = [match.group("name") for match in MARKER.finditer(text)]
    if sorted(opened) != sorted(closed):
        raise DocsError("{}: generated block(s) {} have no matching <!-- /generated:NAME --> line".format(
            where, ", ".join(sorted(set(opened) - set(closed)))))
    for name in opened:
        if name not in registry:
            raise DocsError("{}: unknown generated block {!r}; known: {}".format(where, name, ", ".join(sorted(registry))))

    def replace(match):
        name = match.group("name")
        return "<!-- generated:{0} -->\n{1}\n<!-- /generated:{0} -->".format(name, registry[name]().rstrip("\n"))

    return MARKER.sub(replace, text)


def outdated(registry=None):
    """[(relative path, new text)] of the files whose generated blocks differ from the code;
    DocsError when a required block is missing or the sources are inconsistent."""
    registry = registry or blocks()
    check_spec_notes()
    for relative in REQUIRED_BLOCKS:
        if not os.path.isfile(os.path.join(REPO_ROOT, relative)):
            raise DocsError("{} is missing; it must hold the generated blocks {}".format(
                relative, ", ".join(REQUIRED_BLOCKS[relative])))
    changed = []
    for path in doc_files():
        relative = os.path.relpath(path, REPO_ROOT)
        with open(path) as handle:
            text = handle.read()
        for name in REQUIRED_BLOCKS.get(relative.replace(os.sep, "/"), ()):
            if "<!-- generated:{} -->".format(name) not in text:
                raise DocsError("{}: the generated block {!r} is missing; add the lines <!-- generated:{} --> "
                                "and <!-- /generated:{} --> and run python tools/generate_docs.py".format(
                                    relative, name, name, name))
        new = render(text, registry, relative)
        if new != text:
            changed.append((relative, new))
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(description="Regenerate the generated blocks of the docs from the code.")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 when a generated block differs from the code")
    args = parser.parse_args(argv)
    try:
        changed = outdated()
    except DocsError as error:
        sys.stderr.write("generate_docs: error: {}\n".format(error))
        return 2
    if args.check:
        for relative, _ in changed:
            sys.stderr.write("generate_docs: {} is out of date: run python tools/generate_docs.py\n".format(relative))
        return 1 if changed else 0
    for relative, new in changed:
        with open(os.path.join(REPO_ROOT, relative), "w") as handle:
            handle.write(new)
        print("updated {}".format(relative))
    if not changed:
        print("the generated blocks are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
