"""How a folder of images is laid out: wrapper folders, a split level and a class level.

Downloads lay folders out in a few ways; the layout is judged on the image files' relative
paths alone (other files do not count):

* ``<class>/<image>`` (nested folders under a class belong to it);
* ``<split>/<class>/<image>`` with split folders train / val / test in any case and spelling
  ("Train", "TEST", "validation");
* ``<class>/<split>/<image>`` (split folders inside each class folder);
* any of these under one or more *wrapper* folders that hold everything, as an archive
  unpacks: ``Dataset Name/Train/<class>/...`` or ``Dataset Name/<class>/...`` (a folder is a
  wrapper when every image lies under it and it holds two or more folders with images, or
  split folders);
* images with no folders at all (an unlabelled set), or directly in split folders.

:func:`read_layout` returns the levels found and a one-line description of what was understood;
a class name is never a folder that holds split folders (:func:`check_classes`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from graphret.data._common import normalise_split
from graphret.errors import InputError

REAL_SPLITS = ("train", "val", "test")


def _is_split(name: str) -> bool:
    return normalise_split(name) in REAL_SPLITS


@dataclass(frozen=True)
class Layout:
    """``prefix``: wrapper folder names; ``split_depth`` / ``class_depth``: the index of the
    split / class component in a relative path's parts (None when absent)."""

    prefix: tuple[str, ...]
    split_depth: int | None
    class_depth: int | None
    description: str

    def place(self, parts: list[str]) -> tuple[str | None, str | None] | None:
        """(class, split) of a file's path parts, or None when the file lies outside the layout
        (above the class level, or outside the wrappers)."""
        w = len(self.prefix)
        if tuple(parts[:w]) != self.prefix:
            return None
        dirs = len(parts) - 1
        need = max(d for d in (self.split_depth, self.class_depth, w - 1) if d is not None)
        if dirs <= need:
            return None
        split = normalise_split(parts[self.split_depth]) if self.split_depth is not None else None
        if self.split_depth is not None and split not in REAL_SPLITS:
            return None
        cls = parts[self.class_depth] if self.class_depth is not None else None
        return cls, split


def _all_splits_at(dir_parts: list[list[str]], depth: int) -> bool:
    names = {p[depth] for p in dir_parts if len(p) > depth}
    return bool(names) and all(_is_split(n) for n in names)


def read_layout(image_rels: list[str]) -> Layout:
    """The layout of the image files at ``image_rels`` (posix paths relative to the root)."""
    dir_parts = [r.split("/")[:-1] for r in image_rels]
    prefix: list[str] = []
    chain: list[str] = []  # single-child folders not yet known to be wrappers
    while dir_parts and all(len(p) > len(prefix) + len(chain) for p in dir_parts):
        depth = len(prefix) + len(chain)
        heads = {p[depth] for p in dir_parts}
        if len(heads) != 1:
            break
        head = next(iter(heads))
        if _is_split(head):
            break
        below = {p[depth + 1] for p in dir_parts if len(p) > depth + 1}
        if any(len(p) == depth + 1 for p in dir_parts):  # images directly in it: not a wrapper
            break
        if len(below) >= 2 or any(_is_split(b) for b in below):
            prefix += chain + [head]
            chain = []
        else:
            chain.append(head)  # a wrapper only if a wrapper condition holds further down
    w = len(prefix)
    wrapper = f"wrapper folder {'/'.join(prefix)!r}; " if prefix else ""
    has_dirs = [p for p in dir_parts if len(p) > w]
    if not has_dirs:
        return Layout(tuple(prefix), None, None, f"{wrapper}images without class folders: unlabelled")
    if _all_splits_at(has_dirs, w):
        names = sorted({p[w] for p in has_dirs})
        labelled = any(len(p) > w + 1 for p in has_dirs)
        split_text = "split folders " + ", ".join(f"{n} -> {normalise_split(n)}" for n in names)
        if labelled:
            return Layout(tuple(prefix), w, w + 1, f"{wrapper}{split_text}; class folders below them")
        return Layout(tuple(prefix), w, None, f"{wrapper}{split_text}; no class folders: unlabelled")
    deeper = [p for p in has_dirs if len(p) > w + 1]
    if deeper and _all_splits_at(deeper, w + 1) and all(len(p) > w + 1 for p in has_dirs):
        names = sorted({p[w + 1] for p in deeper})
        return Layout(tuple(prefix), w + 1, w, f"{wrapper}class folders with split folders inside ({', '.join(names)})")
    return Layout(tuple(prefix), None, w, f"{wrapper}class folders")


def check_classes(layout: Layout, image_rels: list[str], classes: set[str], root: str) -> None:
    """Refuse a labelling whose class is a folder holding split folders (a wrapper that was not
    recognised because other images lie beside it)."""
    if layout.class_depth is None:
        return
    inside: dict[str, set[str]] = defaultdict(set)
    for rel in image_rels:
        parts = rel.split("/")[:-1]
        if len(parts) > layout.class_depth + 1:
            inside[parts[layout.class_depth]].add(parts[layout.class_depth + 1])
    for cls in sorted(classes):
        splits = sorted(n for n in inside.get(cls, ()) if _is_split(n))
        if splits and layout.split_depth is None:
            raise InputError(
                f"folder {cls!r} in {root} holds split folders ({', '.join(splits)}), so it is not a class; "
                f"point the source at {cls!r} itself, or move the other images out of {root}"
            )
