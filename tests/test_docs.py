"""README.md and docs/*.md against the repository and the real CLI: links and anchors resolve, repository paths
and Python names exist, every documented `edgeres` command and flag is one the app has, and the README stays a
short first read. Each check lists every offender it finds."""

from __future__ import annotations

import ast
import re
import shlex
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_BYTES = 20_000

# A backticked word naming something in the repository: a path under one of these folders, or a top-level file.
REPO_PREFIXES = ("edgeres/", "tests/", "bench/", "examples/", "docs/", "calibration/", "typings/", ".ci/", "scripts/")
TOP_LEVEL_FILE = re.compile(r"^(?:[\w.-]+\.(?:sh|toml)|requirements[\w-]*\.txt)$")
DOTTED_NAME = re.compile(r"^edgeres(?:\.\w+)+$")  # edgeres.samples.sources.SampleSource
FILE_SUFFIX = re.compile(r"\.(?:json|txt|md|py|onnx|engine|plan|csv|npz|png|yuv|pth)$")  # edgeres.json: a file

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
URL_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
TRAILING_PUNCTUATION = ".,;:!?)'\""
LEADING_PUNCTUATION = "('\""


def doc_pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


@dataclass(frozen=True)
class Line:
    page: Path
    number: int  # 1-based
    text: str
    in_code: bool  # inside a fenced code block (the fence lines themselves count as code)


@cache
def lines_of(page: Path) -> tuple[Line, ...]:
    lines, fence = [], ""
    for number, text in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        opened = FENCE.match(text)
        if opened and not fence:
            fence = opened.group(1)
            lines.append(Line(page, number, text, True))
        elif opened and opened.group(1) == fence:
            fence = ""
            lines.append(Line(page, number, text, True))
        else:
            lines.append(Line(page, number, text, bool(fence)))
    return tuple(lines)


def prose(page: Path) -> Iterator[Line]:
    return (line for line in lines_of(page) if not line.in_code)


def code(page: Path) -> Iterator[Line]:
    return (line for line in lines_of(page) if line.in_code and not FENCE.match(line.text))


def where(line: Line) -> str:
    return f"{page_id(line.page)}:{line.number}"


# ---------------------------------------------------------------------------------------------------- anchors


def anchor_of(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lowercase, punctuation but '-' and '_' removed, spaces to '-'."""
    text = LINK.sub(lambda m: m.group("text"), heading)
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


@cache
def anchors_of(page: Path) -> frozenset[str]:
    """Every anchor of the page's headings; a repeated heading gets -1, -2... as on GitHub."""
    seen: Counter[str] = Counter()
    anchors = set()
    for line in prose(page):
        match = HEADING.match(line.text)
        if match:
            base = anchor_of(match.group(2))
            anchors.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
            seen[base] += 1
    return frozenset(anchors)


@dataclass(frozen=True)
class Link:
    page: Path
    number: int  # the line the link starts on
    text: str
    target: str


def links_of(page: Path) -> list[Link]:
    """Every markdown link outside code, a link whose text wraps onto the next line included."""
    lines = lines_of(page)
    text = "\n".join("" if line.in_code else CODE_SPAN.sub("", line.text) for line in lines)
    return [
        Link(page, text.count("\n", 0, match.start()) + 1, " ".join(match.group("text").split()), match.group("target"))
        for match in LINK.finditer(text)
    ]


def test_every_relative_link_and_anchor_resolves() -> None:
    broken = []
    for page in doc_pages():
        for link in links_of(page):
            if URL_SCHEME.match(link.target):
                continue  # http:, https:, mailto:: not a file of the repository
            path_part, _, anchor = link.target.partition("#")
            linked = (page.parent / path_part).resolve() if path_part else page
            shown = f"{page_id(page)}:{link.number}: [{link.text}]({link.target})"
            if not linked.exists():
                broken.append(f"{shown}: no file {path_part}")
            elif anchor and linked.suffix == ".md" and anchor not in anchors_of(linked):
                broken.append(f"{shown}: no heading of {page_id(linked)} has the anchor #{anchor}")
    assert not broken, "links that do not resolve:\n" + "\n".join(broken)


# ---------------------------------------------------------------------------------------------------- paths


def code_words(page: Path) -> Iterator[tuple[Line, str]]:
    """Each whitespace-separated word of every code span and fenced code block, trimmed of punctuation."""
    for line in lines_of(page):
        if line.in_code:
            if FENCE.match(line.text):
                continue
            spans = [line.text]
        else:
            spans = [match.group(2) for match in CODE_SPAN.finditer(line.text)]
        for span in spans:
            for word in span.split():
                yield line, word.lstrip(LEADING_PUNCTUATION).rstrip(TRAILING_PUNCTUATION)


def repository_path(word: str) -> str | None:
    """The repository path a word names, or None when it names none (an output file, a value, a flag)."""
    word = word.removeprefix("./")
    word = re.sub(r"::.*$", "", word)  # tests/x.py::test_y
    word = re.sub(r":\d+$", "", word)  # edgeres/x.py:12
    if word.startswith(REPO_PREFIXES) or TOP_LEVEL_FILE.match(word):
        return word
    return None


def path_exists(path: str) -> bool:
    """A path, or a pattern (`*`, `?`, `<placeholder>`) that matches at least one path."""
    pattern = re.sub(r"<[^>]*>", "*", path)
    if any(c in pattern for c in "*?["):
        return any(ROOT.glob(pattern.rstrip("/")))
    return (ROOT / path).exists()


def module_file(parts: list[str]) -> Path | None:
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def defined_names(body: list[ast.stmt]) -> dict[str, ast.stmt]:
    names: dict[str, ast.stmt] = {}
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names[node.name] = node
        elif isinstance(node, ast.Assign):
            names.update({t.id: node for t in node.targets if isinstance(t, ast.Name)})
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update({(a.asname or a.name).split(".")[0]: node for a in node.names})
    return names


def python_name_exists(dotted: str) -> bool:
    """`edgeres.a.b` is a module or package; `edgeres.a.b.Name[.attr]` also a name defined in it (a class
    attribute too), read from the source, not imported."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        found = module_file(parts[:split])
        if found is None:
            continue
        rest = parts[split:]
        body = ast.parse(found.read_text(encoding="utf-8")).body
        for name in rest:
            node = defined_names(body).get(name)
            if node is None:
                return False
            if not isinstance(node, ast.ClassDef):
                return name == rest[-1]  # an attribute of a value: not checked further
            body = node.body
        return True
    return False


def test_every_repository_path_and_python_name_exists() -> None:
    missing = []
    for page in doc_pages():
        for line, word in code_words(page):
            path = repository_path(word)
            if path is not None and not path_exists(path):
                missing.append(f"{where(line)}: {word}")
            elif DOTTED_NAME.match(word) and not FILE_SUFFIX.search(word) and not python_name_exists(word):
                missing.append(f"{where(line)}: {word} (no such module or name)")
    assert not missing, "backticked repository paths and Python names that do not exist:\n" + "\n".join(missing)


# ---------------------------------------------------------------------------------------------------- commands


@cache
def cli() -> Any:
    import typer

    from edgeres.cli.app import app

    return typer.main.get_command(app)


def subcommands(command: Any) -> dict[str, Any] | None:
    """A group's commands by name (typer bundles its own click, so a group is recognised by its commands)."""
    found = getattr(command, "commands", None)
    return found if isinstance(found, dict) else None


def options_of(command: Any) -> set[str]:
    names = {"--help"}  # click adds it to every command when parsing
    for param in command.params:
        names.update(o for o in [*param.opts, *getattr(param, "secondary_opts", [])] if o.startswith("-"))
    return names


def walk(tokens: list[str]) -> tuple[Any, list[str], str | None]:
    """The command that `edgeres TOKENS...` names, the tokens after its path, and the problem if it names none."""
    command, path, rest = cli(), ["edgeres"], tokens[1:]
    while rest and (children := subcommands(command)) is not None and not rest[0].startswith("-"):
        if rest[0] not in children:
            return None, rest, f"`{' '.join(path)}` has no command {rest[0]!r} (it has: {', '.join(sorted(children))})"
        command = children[rest[0]]
        path.append(rest.pop(0))
    return command, rest, None


def split_command(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # an unbalanced quote in an example: whitespace is good enough to find the flags
        return text.split()


def flag_of(token: str) -> str | None:
    """The option a command-line token gives (`--calib-size=8` -> `--calib-size`); None for values and `-`."""
    token = token.strip("[]")
    if not token.startswith("-") or token == "-" or re.match(r"^-\d", token):
        return None
    return token.split("=", 1)[0]


def logical_lines(page: Path) -> Iterator[tuple[Line, str]]:
    """Fenced code lines with comments dropped and backslash continuations joined."""
    pending: Line | None = None
    joined = ""
    for line in code(page):
        text = re.sub(r"(^|\s)#.*$", "", line.text).rstrip()
        if pending is None:
            pending, joined = line, ""
        if text.endswith("\\"):
            joined += text[:-1] + " "
            continue
        yield pending, joined + text
        pending = None
    if pending is not None:
        yield pending, joined


def documented_commands(page: Path) -> Iterator[tuple[Line, str]]:
    """Every `edgeres ...` command of the page's code blocks, each part of a pipeline or `&&` chain on its own."""
    for line, text in logical_lines(page):
        for part in re.split(r"\|\||&&|[|;]", text):
            part = part.strip().removeprefix("$ ").strip()
            if part.startswith("edgeres "):
                yield line, " ".join(part.split())


def test_every_documented_command_and_flag_exists() -> None:
    wrong = []
    for page in doc_pages():
        for line, text in documented_commands(page):
            command, rest, problem = walk(split_command(text))
            if problem is not None:
                wrong.append(f"{where(line)}: {text}\n    {problem}")
                continue
            known = options_of(command)
            unknown = [flag for flag in map(flag_of, rest) if flag is not None and flag not in known]
            if unknown:
                wrong.append(f"{where(line)}: {text}\n    not options of this command: {', '.join(unknown)}")
    assert not wrong, "documented commands the CLI does not have:\n" + "\n".join(wrong)


def test_every_inline_command_mention_names_a_command() -> None:
    wrong = []
    for page in doc_pages():
        for line in prose(page):
            for match in CODE_SPAN.finditer(line.text):
                span = match.group(2).strip()
                if span.startswith("edgeres "):
                    _, _, problem = walk(split_command(span))
                    if problem is not None:
                        wrong.append(f"{where(line)}: `{span}`: {problem}")
    assert not wrong, "inline `edgeres ...` mentions naming no command:\n" + "\n".join(wrong)


def alternatives(token: str) -> list[str]:
    """`encode|decode|info` and `--json/--plot`, as prose writes several at once."""
    return [part for part in re.split(r"[|/]", token) if part] or [token]


def short_mention_problems(span: str) -> list[str]:
    """A span that starts with a command's name, without `edgeres` (`profile --from-frames`, `frames encode|decode
    -o`): the command path and every flag, each of alternatives written `a|b` or `--a/--b`, must exist."""
    command, words = cli(), span.split()
    commands = [command]
    while words and all(subcommands(c) is not None for c in commands) and not words[0].startswith("-"):
        names = alternatives(words.pop(0))
        children = [subcommands(c) or {} for c in commands]
        absent = [name for name in names if not any(name in group for group in children)]
        if absent:
            return [f"no command {', '.join(absent)}"]
        commands = [group[name] for group in children for name in names if name in group]
    known = set().union(*(options_of(c) for c in commands))
    flags = [flag for word in words for part in alternatives(word) if (flag := flag_of(part)) is not None]
    return [f"not an option: {flag}" for flag in flags if flag not in known]


@cache
def every_option() -> frozenset[str]:
    found: set[str] = set()
    stack = [cli()]
    while stack:
        command = stack.pop()
        found |= options_of(command)
        stack.extend((subcommands(command) or {}).values())
    return frozenset(found)


def test_every_inline_flag_is_an_option() -> None:
    """In prose, a backticked `--flag` must be an option of some edgeres command, and one after a command's name
    (`profile --from-frames`, `build -o`) an option of that command: a renamed or removed option shows up here."""
    wrong = []
    top_level = set(subcommands(cli()) or {})
    for page in doc_pages():
        for line in prose(page):
            for match in CODE_SPAN.finditer(line.text):
                span = match.group(2).strip()
                words = span.split()
                if words and words[0] in top_level and len(words) > 1:
                    wrong += [f"{where(line)}: `{span}`: {problem}" for problem in short_mention_problems(span)]
                elif span.startswith("--"):
                    flags = [flag for part in alternatives(words[0]) if (flag := flag_of(part)) is not None]
                    wrong += [f"{where(line)}: `{span}`: no command has {f}" for f in flags if f not in every_option()]
    assert not wrong, "backticked flags the CLI does not have:\n" + "\n".join(wrong)


# ---------------------------------------------------------------------------------------------------- structure


def test_readme_is_short_and_starts_with_the_two_commands() -> None:
    size = README.stat().st_size
    assert size < README_MAX_BYTES, f"README.md is {size} bytes; keep it under {README_MAX_BYTES}: detail goes to docs/"
    lines = [line.text for line in lines_of(README)]
    first = next(i for i, text in enumerate(lines) if text.strip() and not text.startswith("# "))
    assert lines[first].strip() == "```bash", f"README.md: after the title: {lines[first]!r}, not ```bash"
    end = next(i for i in range(first + 1, len(lines)) if FENCE.match(lines[i]))
    block = [text.split()[0] for text in lines[first + 1 : end] if text.strip()]
    assert block == ["./run.sh", "./test.sh"], f"README.md's first block runs {block}, not ./run.sh then ./test.sh"


def test_every_docs_page_has_a_title_a_link_back_and_a_place_in_the_readme() -> None:
    problems = []
    readme_links = {(ROOT / link.target.partition("#")[0]).resolve() for link in links_of(README)}
    for page in doc_pages()[1:]:
        texts = [line.text for line in lines_of(page) if line.text.strip()]
        if not texts or not texts[0].startswith("# "):
            problems.append(f"{page_id(page)}: does not start with a '# Title' line")
        if len(texts) < 2 or "(../README.md" not in texts[1]:
            problems.append(f"{page_id(page)}: its second line is not a link back to ../README.md")
        if page.resolve() not in readme_links:
            problems.append(f"{page_id(page)}: not linked from README.md")
    assert not problems, "docs pages:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Camera frames (YUV 4:2:2)", "camera-frames-yuv-422"),
        ("Building INT8 and FP16 models: `edgeres build`", "building-int8-and-fp16-models-edgeres-build"),
        ("1. Put the photos in one folder per class", "1-put-the-photos-in-one-folder-per-class"),
        ("Why cuda-python, not pycuda", "why-cuda-python-not-pycuda"),
        ("snake_case and [a link](x.md)", "snake_case-and-a-link"),
    ],
)
def test_anchors_follow_githubs_rules(heading: str, anchor: str) -> None:
    assert anchor_of(heading) == anchor
