"""Regenerate the parts of the docs that the code defines, so they cannot drift from it.

    python tools/generate_docs.py            # rewrite the generated blocks in place
    python tools/generate_docs.py --check    # exit 1 when a block differs from what the code says now

A generated block sits between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->` in a
Markdown file under docs/ (or README.md); everything outside the markers is written by hand and
left alone. The sources:

  parameters          trt_infer/ros/parameters.py (what the node declares)
  launch-arguments    launch/nano.launch.py (DeclareLaunchArgument calls, read with ast)
  statistics-keys     trt_infer/ros/stats.py fed two frames with the pipeline's stages
  spec-*              the schema Fields of trt_infer/spec.py and of each task's module in trt_infer/tasks.py
                      (nested mappings get their own block; a task block starts with the row's doc)
  task-outputs        trt_infer/tasks.py TASKS (roles, post-processors, what the node publishes)
  targets             converter/targets.py PROFILES
  fix-passes          converter/fixes PASS_NAMES and each pass's docstring (read with ast, nothing imported)
  check-rules         converter/check.py Finding(...) calls (rule name -> fix passes), read with ast
  convert-options     converter/cli.py build_parser(): every sub-command's options

Every spec key is described by its Field's `doc`; a key without one is an error.
"""
import argparse
import ast
import os
import re
import sys
import textwrap

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

MARKER = re.compile(r"<!-- generated:(?P<name>[\w.-]+) -->\n(?P<body>.*?)<!-- /generated:(?P=name) -->",
                    re.DOTALL)
OPENING = re.compile(r"<!-- generated:([\w.-]+) -->")

# Where each block must appear (a block may also appear elsewhere); SPEC_DOC's come from the schemas.
REQUIRED_BLOCKS = {
    "docs/node.md": ("parameters", "launch-arguments", "statistics-keys"),
    "docs/converting.md": ("targets", "fix-passes", "check-rules", "convert-options"),
}
SPEC_DOC = "docs/model_specs.md"


def required_blocks():
    """REQUIRED_BLOCKS plus the spec doc's blocks: one per spec section, and the task table."""
    spec_names = tuple("spec-" + name for _, _, name in _spec_sections()) + ("task-outputs",)
    return dict(REQUIRED_BLOCKS, **{SPEC_DOC: spec_names})


def _nested_sections(section, schema):
    """(section, schema, block name) of `schema` and, depth first, of its nested mapping Fields."""
    found = [(section, schema, section or "top")]
    for key, field in schema.items():
        if field.kind is dict and field.schema is not None:
            found.extend(_nested_sections("{}.{}".format(section, key) if section else key, field.schema))
    return found


def _spec_sections():
    """Every spec section the runtime validates: the top level and its nested mappings, then each
    documented task (tasks sharing a module share the first one's section) and its nested mappings."""
    from trt_infer import spec

    sections = _nested_sections("", spec.top_schema())
    for task in _documented_tasks():
        sections.extend(_nested_sections(task.name, task.schema))
    return sections


def _documented_tasks():
    """The rows of the task table that get a section in the docs: the first of each module."""
    from trt_infer import tasks

    seen, rows = set(), []
    for task in tasks.TASKS:
        if task.module not in seen:
            seen.add(task.module)
            rows.append(task)
    return rows


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
    if not field.doc:
        raise DocsError("spec key {} has no description: give its Field a doc=".format(path))
    return field.doc


def spec_table(section, schema):
    from trt_infer.tasks import task_names

    rows = []
    for key, field in schema.items():
        path = "{}.{}".format(section, key) if section else key
        allowed = _allowed(field)
        if section == "" and key in task_names():
            heading = _section_heading(key)
            allowed, description = "mapping", "settings of task `{}`, see [{}](#{})".format(
                key, heading, _anchor(heading))
        else:
            description = spec_description(path, field)
        rows.append(("`{}`".format(path), _kind_name(field), _default_text(field), allowed, description))
    return _table(("key", "type", "default", "allowed", "description"), rows)


def _anchor(heading):
    return heading.replace(".", "")


def _section_heading(task_name):
    """The docs section documenting a task's settings: its own, or that of the first task sharing its
    module (batched_nms: efficient_nms)."""
    from trt_infer.tasks import get_task

    module = get_task(task_name).module
    return next(task.name for task in _documented_tasks() if task.module == module)


def _spec_block(section, schema):
    """A section's table; a task's own section starts with its heading and the row's doc."""
    from trt_infer.tasks import get_task, task_names

    table = spec_table(section, schema)
    if section not in task_names():
        return table
    task = get_task(section)
    paragraph = textwrap.fill(task.doc, width=100, break_long_words=False, break_on_hyphens=False)
    return "## {}\n\n{}\n\n{}".format(task.name, paragraph, table)


def spec_blocks():
    """{"spec-<section>": table} for every schema the runtime validates."""
    blocks = {}
    for section, schema, name in _spec_sections():
        blocks["spec-" + name] = (lambda section=section, schema=schema: _spec_block(section, schema))
    return blocks


def documented_spec_paths():
    """Every key path the spec tables describe."""
    paths = set()
    for section, schema, _ in _spec_sections():
        paths.update("{}.{}".format(section, key) if section else key for key in schema)
    return paths


def _module_file(dotted):
    return "`{}.py`".format(dotted.replace(".", "/"))


def task_outputs_block():
    from trt_infer import tasks

    rows = []
    for task in tasks.TASKS:
        heading = _section_heading(task.name)
        if task.gpu_postprocessor is None:
            gpu = "none: outputs go to the CPU"
        else:
            module, class_name = task.gpu_postprocessor.split(":")
            gpu = "{} `{}`".format(_module_file(module), class_name)
        rows.append(("`{}`".format(task.name), ", ".join("`{}`".format(role) for role in task.outputs),
                     "`{}:`, keys as in [{}](#{})".format(task.name, heading, _anchor(heading)),
                     "{} `{}`".format(_module_file(task.module), task.postprocessor), gpu, task.publishes))
    return _table(("task", "`outputs:` roles (role -> tensor name)", "settings section",
                   "post-processing (CPU)", "on the GPU", "the node publishes"), rows)


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
            raise DocsError("{}: unknown generated block {!r}; known: {}".format(
                where, name, ", ".join(sorted(registry))))

    def replace(match):
        name = match.group("name")
        return "<!-- generated:{0} -->\n{1}\n<!-- /generated:{0} -->".format(name, registry[name]().rstrip("\n"))

    return MARKER.sub(replace, text)


def outdated(registry=None):
    """[(relative path, new text)] of the files whose generated blocks differ from the code;
    DocsError when a required block is missing or the sources are inconsistent."""
    registry = registry or blocks()
    required = required_blocks()
    for relative in required:
        if not os.path.isfile(os.path.join(REPO_ROOT, relative)):
            raise DocsError("{} is missing; it must hold the generated blocks {}".format(
                relative, ", ".join(required[relative])))
    changed = []
    for path in doc_files():
        relative = os.path.relpath(path, REPO_ROOT)
        with open(path) as handle:
            text = handle.read()
        for name in required.get(relative.replace(os.sep, "/"), ()):
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
