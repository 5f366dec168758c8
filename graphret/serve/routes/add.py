"""``POST /add`` (uploaded images) and ``POST /add/folder`` (a folder or source on the server):
for clients that hold the write token.

Both go through the store layer's single writer (its lock and put-if-absent commits, see
:mod:`graphret.store.commit`), so adds that arrive together all land, one version each, and
readers keep their version until the add has committed; the server then moves to the new
version before it answers, so the client that added sees its items at once.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile

from graphret.api.add import add_to_store
from graphret.api.config import AddConfig
from graphret.errors import InputError
from graphret.store.maintain import DEFAULT_GRACE
from graphret.serve.auth import require_writer
from graphret.serve.config import ServeConfig
from graphret.serve.deps import current_view, holder_of, server_config
from graphret.serve.holder import View
from graphret.serve.models import AddFolderRequest, AddResponse
from graphret.serve.routes.search import read_uploads
from graphret.serve.uploads import batch_of, remove_orphan_batches, saved_images

router = APIRouter(tags=["add"], dependencies=[Depends(require_writer)])

SPLITS = ("train", "val", "test", "all")


def uploads_folder(config: ServeConfig, store: Path) -> Path:
    """Where uploaded images are kept: ``config.uploads``, else ``STORE/uploads``."""
    return Path(config.uploads) if config.uploads else store / "uploads"


def committed_batches(ids) -> set[str]:
    """The upload batch folders the store's items come from."""
    return {batch for batch in map(batch_of, ids) if batch is not None}


def sweep_uploads(config: ServeConfig, store: Path, ids, *, grace: float = DEFAULT_GRACE) -> int:
    """Remove the uploads of adds killed before their commit (see :func:`remove_orphan_batches`)."""
    return remove_orphan_batches(uploads_folder(config, store), committed_batches(ids), grace=grace)


@router.post("/add", response_model=AddResponse, summary="Add uploaded images to the store (needs the write token)")
def add_uploads(
    request: Request,
    files: Annotated[list[UploadFile], File(description="Images to add: PNG, JPEG, TIFF, BMP, GIF, WebP or DICOM.")],
    split: Annotated[str, Form(description="Split the new items get (they join the archive whatever it is).")] = "train",
    label: Annotated[str | None, Form(description="Class of the store that labels every uploaded image.")] = None,
    k: Annotated[int | None, Form(description="Edges per new image [the store's k].")] = None,
    view: View = Depends(current_view),
    config: ServeConfig = Depends(server_config),
) -> dict[str, Any]:
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)} for {{split}}", param="split")
    class_names = view.snapshot.class_names
    if label is not None and label != "":
        if view.snapshot.task != "multiclass" or label not in class_names:
            raise InputError(f"label {label!r} is not a class of this store; choose one of {', '.join(class_names) or '(none)'} "
                             "for {label}", param="label")
    else:
        label = None
    uploads = read_uploads(files, config)
    holder = holder_of(request)
    root = uploads_folder(config, holder.path)
    sweep_uploads(config, holder.path, view.snapshot.ids)
    images = saved_images(uploads, root, max_pixels=config.max_pixels, split=split, label=label, class_names=class_names)
    try:
        summary = add_to_store(holder.path, images, AddConfig.from_options(k=k))
    except BaseException:  # not committed: its uploads go with it
        shutil.rmtree(Path(images.paths[0]).parent, ignore_errors=True)
        raise
    holder.refresh()
    return {**summary, "ids": list(images.ids)}


@router.post("/add/folder", response_model=AddResponse, summary="Add a folder or source on the server (needs the write token)")
def add_folder(body: AddFolderRequest, request: Request) -> dict[str, Any]:
    holder = holder_of(request)
    summary = add_to_store(holder.path, body.source, AddConfig.from_options(k=body.k, split=body.split))
    holder.refresh()
    return summary
