#!/usr/bin/env python3
"""Render the manual pages from docs/cli.md, their one source (see there).

shmchan(1) is the text outside the command sections; each `### command`
section becomes shmchan-command(1): NAME from the command table's summary,
SYNOPSIS from the section's first code block, DESCRIPTION from the rest.

usage: manpages.py CLI_MD OUTDIR VERSION [PANDOC]
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SECTION = re.compile(r"^### ([a-z]+)$")
ROW = re.compile(r"^\| \[`([a-z]+)`\]\(#[a-z]+\) \| (.*) \|$")
LINK = re.compile(r"\[([^\]]+)\]\([^)]+\)")


def split(text: str) -> tuple[list[str], dict[str, list[str]]]:
    """The lines outside command sections, and each command's lines."""
    main: list[str] = []
    cmds: dict[str, list[str]] = {}
    cur = main
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        m = None if fenced else SECTION.match(line)
        if m:
            cur = cmds.setdefault(m.group(1), [])
            continue
        if not fenced and (line.startswith("## ") or line.startswith("# ")):
            cur = main
        cur.append(line)
    return main, cmds


def plain_links(lines: list[str]) -> str:
    return LINK.sub(r"\1", "\n".join(lines)) + "\n"


def render(md: str, out: Path, title: str, version: str, pandoc: str) -> None:
    subprocess.run([pandoc, "-s", "-f", "markdown-smart", "-t", "man", "-o", str(out),
                    "-M", f"title={title}", "-M", "section=1",
                    "-M", "header=shmchan manual", "-M", f"footer=shmchan {version}"],
                   input=md.encode(), check=True)


def command_page(name: str, summary: str, body: list[str]) -> str:
    # The synopsis is the first code block; the rest is the description.
    start = body.index("```")
    end = body.index("```", start + 1)
    synopsis = body[start + 1:end]
    rest = [("#" + l[3:] if l.startswith("####") else l) for l in body[end + 1:]]
    out = [f"# NAME", "", f"shmchan-{name} - {summary}", "", "# SYNOPSIS", ""]
    out += ["| " + s.replace("*", "\\*") if s.strip() else "|" for s in synopsis]
    out += ["", "# DESCRIPTION", ""] + rest
    out += ["", "# COMMON OPTIONS", "",
            "**-h**, **--help** prints the command's help. **--global** (every command that "
            "takes a NAME) selects the Global\\ namespace on Windows and has no effect "
            "elsewhere. See **shmchan**(1) for names, options and exit statuses."]
    out += ["", "# SEE ALSO", "", "**shmchan**(1); docs/cli.md, the source of this page"]
    return plain_links(out)


def main_page(lines: list[str], cmds: list[str]) -> str:
    # The document title becomes NAME; its sections become the page's.
    body = [l[1:] if l.startswith("##") else l for l in lines[1:]]
    out = ["# NAME", "", "shmchan - shared-memory channels from the shell", ""]
    out += ["# DESCRIPTION", ""] + body
    out += ["", "# SEE ALSO", "", ", ".join(f"**shmchan-{c}**(1)" for c in cmds)]
    return plain_links(out)


def main() -> int:
    src, outdir, version = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    pandoc = sys.argv[4] if len(sys.argv) > 4 else "pandoc"
    text = src.read_text()
    summaries = {m.group(1): m.group(2).replace("`", "") for m in
                 (ROW.match(l) for l in text.splitlines()) if m}
    main_lines, cmds = split(text)
    outdir.mkdir(parents=True, exist_ok=True)
    for name, body in cmds.items():
        if name not in summaries:
            print(f"{src}: command {name} is missing from the command table", file=sys.stderr)
            return 1
        render(command_page(name, summaries[name], body), outdir / f"shmchan-{name}.1",
               f"SHMCHAN-{name.upper()}", version, pandoc)
    render(main_page(main_lines, list(cmds)), outdir / "shmchan.1", "SHMCHAN", version, pandoc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
