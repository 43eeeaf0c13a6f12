#!/usr/bin/env python3
"""Checks every relative link of the repository's Markdown files: the file exists, and a #fragment names a heading
(GitHub's anchor of it) or an explicit <a id|name="..."> of the target file. Also checks that the index of the
documentation, docs/README.md, links every other Markdown file of the repository (when it exists).

Usage: python3 tools/check_doc_links.py [REPO_ROOT]    one line per broken link, exit status 1 if any
       python3 tools/check_doc_links.py --self-test    checks the checker on links it writes itself

Standard library only. External links (http:, https:, mailto:) are not fetched. Links inside fenced code blocks and
inline code spans are not links on GitHub and are skipped.
"""
import os
import re
import sys
import tempfile

# Directories that hold no documentation of the project: VCS data, build trees, virtual environments, runs.
SKIP_DIRS = {"runs", "node_modules", "__pycache__"}
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
HTML_ANCHOR = re.compile(r"""<a\b[^>]*?\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def is_skipped_dir(path, name):
    return (name.startswith(".") or name.startswith("build") or name in SKIP_DIRS
            or os.path.exists(os.path.join(path, name, "CMakeCache.txt")))


def markdown_files(root):
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not is_skipped_dir(directory, d))
        for name in sorted(files):
            if name.endswith(".md"):
                yield os.path.join(directory, name)


def prose_lines(path):
    """(line number, text) of the lines outside fenced code blocks, inline code spans blanked."""
    fence = None
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            match = FENCE.match(line)
            if match:
                marker = match.group(1)
                if fence is None:
                    fence = marker
                elif marker[0] == fence[0] and len(marker) >= len(fence):
                    fence = None
                continue
            if fence is None:
                yield number, line.rstrip("\n")


def github_slug(heading):
    """The anchor GitHub gives a heading: its rendered text lower-cased, every character that is not a letter,
    digit, underscore, hyphen or space removed, spaces turned into hyphens (github-slugger)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images: their text
    text = re.sub(r"<[^>]+>", "", text)                          # inline HTML tags
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors_of(path):
    anchors, seen = set(), {}
    for _, line in prose_lines(path):
        anchors.update(HTML_ANCHOR.findall(line))
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        # Repeated headings get -1, -2, ... in order, as on GitHub.
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def links_of(path):
    for number, line in prose_lines(path):
        line = CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)
        for pattern in (INLINE_LINK, HTML_LINK):
            for target in pattern.findall(line):
                yield number, target


def broken_links(root):
    problems, anchor_cache = [], {}
    for md in markdown_files(root):
        for number, target in links_of(md):
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
                continue  # external: http:, https:, mailto:
            file_part, _, fragment = target.partition("#")
            resolved = os.path.normpath(os.path.join(os.path.dirname(md), file_part)) if file_part else md
            where = f"{os.path.relpath(md, root)}:{number}"
            if not os.path.exists(resolved):
                problems.append(f"{where}: broken link '{target}': no file {os.path.relpath(resolved, root)}")
                continue
            if fragment and resolved.endswith(".md"):
                if resolved not in anchor_cache:
                    anchor_cache[resolved] = anchors_of(resolved)
                if fragment not in anchor_cache[resolved]:
                    problems.append(f"{where}: broken link '{target}': no heading or anchor '#{fragment}' in "
                                    f"{os.path.relpath(resolved, root)}")
    return problems


def unindexed_docs(root):
    """Markdown files that docs/README.md (the index of every document) does not link, beside the root README."""
    index = os.path.join(root, "docs", "README.md")
    if not os.path.exists(index):
        return []
    linked = {os.path.normpath(os.path.join(os.path.dirname(index), target.partition("#")[0]))
              for _, target in links_of(index)}
    exempt = {index, os.path.join(root, "README.md")}
    return [f"docs/README.md: {os.path.relpath(md, root)} is not in the index of the documents"
            for md in markdown_files(root) if os.path.normpath(md) not in linked | exempt]


def self_test():
    """Writes a small tree whose broken links are known, and checks that exactly those are reported."""
    files = {
        "README.md": "\n".join([
            "# Title",
            "[ok file](docs/a.md) [ok anchor](docs/a.md#2-d-ict-and-ect-on-eight-gaussians)",
            "[ok dup](docs/a.md#same-1) [ok code heading](docs/a.md#7-ect-srcschedulesect_mappingcpp-preset)",
            "[ok html](docs/a.md#custom) <img src=\"docs/pic.png\"> [ext](https://example.com/x.md)",
            "[bad file](docs/missing.md)",
            "[bad anchor](docs/a.md#no-such-heading)",
            "<img src=\"docs/missing.png\" width=\"10%\">",
            "`[in a code span](nowhere.md)`",
            "```bash",
            "[in a fence](nowhere.md)",
            "```",
            "[self](#title) [bad self](#untitled)",
        ]) + "\n",
        "docs/a.md": "\n".join([
            "# A", "## 2-D: iCT and ECT on eight Gaussians", "## Same", "## Same",
            "## 7. ECT (`src/schedules/ect_mapping.cpp`, preset)", "<a id=\"custom\"></a>",
            "[back](../README.md#title) [bad back](../README.md#nope)",
        ]) + "\n",
        "docs/pic.png": "",
        "build/CMakeCache.txt": "",
        "build/ignored.md": "[not checked](missing.md)\n",
        "docs/README.md": "[a](a.md)\n",
        "docs/unlisted.md": "# Not in the index\n",
    }
    expected = {
        "README.md:5": "docs/missing.md", "README.md:6": "#no-such-heading", "README.md:7": "docs/missing.png",
        "README.md:12": "#untitled", "docs/a.md:7": "#nope",
    }
    with tempfile.TemporaryDirectory() as root:
        for name, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
            with open(os.path.join(root, name), "w", encoding="utf-8") as f:
                f.write(text)
        problems = broken_links(root)
        unindexed = unindexed_docs(root)
    failures = []
    if unindexed != ["docs/README.md: docs/unlisted.md is not in the index of the documents"]:
        failures.append(f"expected docs/unlisted.md alone to be reported as missing from the index: {unindexed}")
    found = {p.split(": ", 1)[0]: p for p in problems}
    failures += [f"expected a broken link at {where} ({what})" for where, what in expected.items()
                 if where not in found or what not in found[where]]
    failures += [f"unexpected report: {p}" for where, p in found.items() if where not in expected]
    if len(problems) != len(found):
        failures.append(f"more than one report on a line: {problems}")
    for failure in failures:
        print(f"check_doc_links self-test: {failure}", file=sys.stderr)
    return 1 if failures else 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) > 2:
        print(__doc__, file=sys.stderr)
        return 2
    root = os.path.abspath(argv[1] if len(argv) == 2 else os.path.join(os.path.dirname(__file__), ".."))
    problems = broken_links(root) + unindexed_docs(root)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
