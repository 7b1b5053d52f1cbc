"""A small declarative validator for the YAML model specs.

Each part of the runtime declares the section of the spec it consumes as a dict of `Field`s
next to the code that uses it; `validate` checks a parsed YAML mapping against it, fills in
defaults and reports the first problem with its key path, the bad value and what is allowed.
Unknown keys are errors: a misspelt option must never be silently ignored. The validated
mapping is a read-only `Section`: keys read as attributes (`section.nms.top_k`), and it is still a
dict for JSON (the spec digest) and for code that reads keys.
"""

import numbers


from trt_infer.errors import SpecError


REQUIRED = object()


class Section(dict):
    """A validated spec section: a read-only dict whose keys also read as attributes.

    Nested mappings of the schema are Sections too. Writing raises TypeError: a spec is validated
    once, and changing a value afterwards would bypass the checks and the digest.
    """

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError("spec section has no key {!r}; keys: {}".format(key, ", ".join(sorted(self))))

    def _read_only(self, *args, **kwargs):
        raise TypeError("a validated spec section is read-only; change the spec and load it again")

    __setitem__ = __delitem__ = __setattr__ = __delattr__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __reduce__(self):
        # copy/deepcopy/pickle rebuild it from a plain dict instead of writing keys one by one
        return (Section, (dict(self),))

    def __repr__(self):
        return "Section({})".format(dict.__repr__(self))


def _describe_kind(kind):
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a mapping"}
    return names.get(kind, getattr(kind, "__name__", str(kind)))


class Field(object):
    """One key of a spec section.

    kind: bool, int, float, str, list or dict. float accepts integers too.
    choices: allowed values (for str/int fields).
    minimum, maximum: inclusive numeric bounds, or None; above: an exclusive lower bound, below an
        exclusive upper bound. Data, so docs, ROS parameter ranges and messages read the same limits.
    item: a Field every list element must satisfy.
    length: exact list length, or None.
    schema: for dict fields, the nested schema.
    check: optional callable(value) -> error message or None, for rules neither a type nor bounds
        can express; `check_doc` says that rule in words for the docs.
    nullable: None is an accepted value.
    doc: what the key means, for the generated docs.
    """

    def __init__(self, kind, default=REQUIRED, choices=None, item=None, length=None,
                 schema=None, check=None, nullable=False, doc="", minimum=None, maximum=None,
                 above=None, below=None, check_doc=""):
        self.kind = kind
        self.default = default
        self.choices = choices
        # a float field's limits are floats, as ROS parameter ranges (FloatingPointRange) require
        limit = float if kind is float else (lambda value: value)
        self.minimum, self.maximum, self.above, self.below = (
            None if value is None else limit(value) for value in (minimum, maximum, above, below))
        self.check_doc = check_doc
        self.item = item
        self.length = length
        self.schema = schema
        self.check = check
        self.nullable = nullable
        self.doc = doc

    @property
    def required(self):
        return self.default is REQUIRED

    def bounds(self):
        """The numeric limits in words ("between 0 and 1", ">= 1", "> 0 and < 1"), or ""."""
        if self.minimum is not None and self.maximum is not None:
            return "between {:g} and {:g}".format(self.minimum, self.maximum)
        parts = []
        for limit, sign in ((self.minimum, ">="), (self.above, ">"), (self.maximum, "<="), (self.below, "<")):
            if limit is not None:
                parts.append("{} {:g}".format(sign, limit))
        return " and ".join(parts)

    def bounds_problem(self, value):
        """'must be ...' when a number lies outside the bounds, else None."""
        outside = ((self.minimum is not None and value < self.minimum)
                   or (self.maximum is not None and value > self.maximum)
                   or (self.above is not None and value <= self.above)
                   or (self.below is not None and value >= self.below))
        return "must be " + self.bounds() if outside else None

    def allowed(self):
        """Human description of the accepted values, used in error messages and docs."""
        if self.choices is not None:
            text = "one of " + ", ".join(repr(choice) for choice in self.choices)
        elif self.kind is list and self.item is not None:
            text = "a list of {}".format(self.item.allowed())
            if self.length is not None:
                text = "a list of {} values, each {}".format(self.length, self.item.allowed())
        else:
            text = _describe_kind(self.kind)
        if self.nullable:
            text += " or null"
        return text


def _matches_kind(value, kind):
    if kind is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    return isinstance(value, kind)


def _validate_value(value, field, path):
    if value is None and field.nullable:
        return None
    if not _matches_kind(value, field.kind):
        raise SpecError(path, "got {!r}; expected {}".format(value, field.allowed()))
    if field.choices is not None and value not in field.choices:
        raise SpecError(path, "got {!r}; allowed: {}".format(
            value, ", ".join(repr(choice) for choice in field.choices)))
    if field.kind is float:
        value = float(value)
    if field.kind in (int, float):
        problem = field.bounds_problem(value)
        if problem:
            raise SpecError(path, "got {!r}; {}".format(value, problem))
    if field.kind is list:
        if field.length is not None and len(value) != field.length:
            raise SpecError(path, "got {} values {!r}; expected {}".format(
                len(value), value, field.allowed()))
        if field.item is not None:
            value = [_validate_value(element, field.item, "{}[{}]".format(path, index))
                     for index, element in enumerate(value)]
    if field.kind is dict and field.schema is not None:
        value = validate(value, field.schema, path)
    if field.check is not None:
        problem = field.check(value)
        if problem:
            raise SpecError(path, "got {!r}; {}".format(value, problem))
    return value


def validate(data, schema, path):
    """Return a copy of `data` checked against `schema` with defaults filled in, as a Section.

    `path` is the dotted key path of `data` in the spec, used in messages ("postprocess.nms").
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(path, "got {!r}; expected a mapping with keys {}".format(
            data, ", ".join(sorted(schema))))
    unknown = sorted(set(data) - set(schema))
    if unknown:
        raise SpecError(_join(path, unknown[0]), "unknown key; allowed keys here: {}".format(
            ", ".join(sorted(schema))))
    result = {}
    for key, field in schema.items():
        key_path = _join(path, key)
        if key in data:
            result[key] = _validate_value(data[key], field, key_path)
        elif field.required:
            raise SpecError(key_path, "missing; expected {}".format(field.allowed()))
        elif field.kind is dict and field.schema is not None and field.default is None:
            result[key] = None
        elif field.kind is dict and field.schema is not None:
            result[key] = validate(field.default, field.schema, key_path)
        else:
            result[key] = field.default
    return Section(result)


def _join(path, key):
    return "{}.{}".format(path, key) if path else str(key)
