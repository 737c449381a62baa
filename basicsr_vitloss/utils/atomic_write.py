"""Atomic file writes: a file is written under a hidden temporary name in its own folder and renamed
into place, so a run killed mid-write never leaves a torn checkpoint, image or table behind. The one
helper every writer in the package uses."""
import contextlib
import os
import os.path as osp
import uuid


def temporary_path(path):
    """A hidden, unique temporary name next to ``path`` that keeps its extension (so writers that
    pick the format from the name, such as ``cv2.imwrite``, still do)."""
    folder, name = osp.split(osp.abspath(os.fspath(path)))
    root, ext = osp.splitext(name)
    return osp.join(folder, f'.{root}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{ext}')


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path to write; on success it replaces ``path``, on error it is removed.
    The file keeps the permissions its writer gave it (a plain open: 0666 minus the umask)."""
    path = os.fspath(path)
    tmp = temporary_path(path)
    try:
        yield tmp
        if not osp.isfile(tmp):
            raise OSError(f'nothing was written to {tmp} (for {path}).')
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def atomic_write(path, write, mode='wb', **open_kwargs):
    """Calls ``write(file)`` on a temporary file opened with ``mode``, fsyncs it, renames it onto ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, mode.replace('w', 'x'), **open_kwargs) as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())


def atomic_save(obj, path, _save=None):
    """``torch.save(obj, path)`` atomically (``_save``: the save function, torch.save by default)."""
    if _save is None:
        import torch
        _save = torch.save
    atomic_write(path, lambda file: _save(obj, file))


def atomic_imwrite(path, image, params=()):
    """``cv2.imwrite`` atomically; raises OSError naming the file where OpenCV cannot write it."""
    import cv2
    with atomic_path(path) as tmp:
        if not cv2.imwrite(tmp, image, list(params)):
            raise OSError(f'cannot write {path} (OpenCV could not encode or write the image).')
