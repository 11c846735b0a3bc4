"""Per-slice image embeddings on disk, so a fresh process re-uses the costly encoder work.

The CVPR 2025 interactive challenge runs every step (the box, then each click) as a new
process. The embeddings of a volume's slices do not change between steps, so
:class:`EmbeddingStore` keeps them in a folder (by default ``$MEDSAM_HOME/embeddings``):

* one ``.npz`` file per slice, named by a digest of the image encoder's weights (the
  only weights an embedding depends on, so a model fine-tuned with its encoder frozen
  shares its base model's files), the preprocessing and precision, and the slice's
  contents (so a file can only be used for the slice, encoder and settings it was made
  from);
* bounded in size: after each write the least recently used files are deleted until the
  folder holds at most ``max_bytes``;
* proving what they hold: each file stores the full digest it is named by, checked on
  load, so a file copied or renamed to another slice's name is not used; a symbolic link or
  anything else that is not a plain file in the folder is removed, never followed;
* safe to delete at any time: a missing or unreadable file is computed again (an
  unreadable one is removed).

The files hold plain arrays only (``np.load(allow_pickle=False)``), written atomically.

:func:`configured_store` is the store a command uses: ``$MEDSAM_EMBEDDING_CACHE``, when
set, names a folder that keeps the embeddings of every run (a test suite or a batch of
experiments on the same images); otherwise a command that asks for a store gets the default
folder.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Hashable

if TYPE_CHECKING:
    import torch

    from ..predictor import MedSAMPredictor

#: default bound of the store's folder (a LiteMedSAM slice embedding is 4 MiB)
DEFAULT_MAX_BYTES = 2 * 1024 ** 3
#: environment variable naming a folder where every run keeps its slice embeddings
STORE_ENV = "MEDSAM_EMBEDDING_CACHE"


def default_store_dir() -> Path:
    """``$MEDSAM_HOME/embeddings`` (see :func:`medsam.weights.cache_dir`)."""
    from ..weights.cache import cache_dir

    return cache_dir() / "embeddings"


def configured_store(requested: bool = False) -> "EmbeddingStore | None":
    """The store of a command's run: in ``$MEDSAM_EMBEDDING_CACHE`` when that is set (every
    run keeps its embeddings there), else in :func:`default_store_dir` when ``requested``,
    else None (embeddings kept in memory only)."""
    folder = os.environ.get(STORE_ENV)
    if folder:
        return EmbeddingStore(folder)
    return EmbeddingStore() if requested else None


def model_fingerprint(model: "torch.nn.Module") -> str:
    """BLAKE2b digest of a model's parameters and buffers (names, shapes, dtypes, values)."""
    import torch

    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        if t.numel():
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class EmbeddingStore:
    """A bounded folder of slice embeddings (see the module docstring).

    Args:
        folder: where the files go (created on first write); None: :func:`default_store_dir`.
        max_bytes: bound of the folder's size; 0 keeps nothing.
    Attributes:
        hits, misses: lookups answered from disk, and not.
    """

    def __init__(self, folder: str | os.PathLike | None = None, max_bytes: int = DEFAULT_MAX_BYTES):
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.folder = Path(folder) if folder is not None else default_store_dir()
        self.max_bytes = int(max_bytes)
        self.hits = 0
        self.misses = 0

    @staticmethod
    def tag_for(namespace: str, key: Hashable) -> str:
        """The digest of slice ``key`` under ``namespace`` that its file holds (and is named by)."""
        return hashlib.blake2b(f"{namespace}|{key!r}".encode(), digest_size=32).hexdigest()

    def path_for(self, namespace: str, key: Hashable) -> Path:
        """The file of slice ``key`` under ``namespace`` (model and settings)."""
        return self.folder / f"{self.tag_for(namespace, key)[:40]}.npz"

    def load(self, predictor: "MedSAMPredictor", namespace: str, key: Hashable) -> bool:
        """Give ``predictor`` the stored embedding of ``key``; False when there is none."""
        from ..errors import InputError

        path = self.path_for(namespace, key)
        try:
            plain = stat.S_ISREG(os.lstat(path).st_mode)
        except OSError:
            plain = None
        if self.max_bytes == 0 or not plain:
            if plain is False:   # a symbolic link or a folder planted here: never followed
                self._remove(path)
            self.misses += 1
            return False
        try:
            predictor.load_embedding(path, tag=self.tag_for(namespace, key))
        except InputError:  # damaged, stale, or another slice's: compute again
            self._remove(path)
            self.misses += 1
            return False
        try:
            os.utime(path)  # least recently used goes first
        except OSError:
            pass
        self.hits += 1
        return True

    @staticmethod
    def _remove(path: Path) -> None:
        """Remove what is at ``path`` (a link itself, not what it points to)."""
        try:
            if path.is_dir() and not path.is_symlink():
                import shutil

                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        except OSError:
            pass

    def save(self, predictor: "MedSAMPredictor", namespace: str, key: Hashable) -> None:
        """Store ``predictor``'s current embedding as ``key``, then trim the folder. A full
        or read-only disk only means the embedding is not kept."""
        if self.max_bytes == 0:
            return
        from ..errors import MedSAMError

        path = self.path_for(namespace, key)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            predictor.save_embedding(path, overwrite=True, tag=self.tag_for(namespace, key))
        except (OSError, MedSAMError):  # an unwritable folder, a full disk
            return
        self.trim()

    def trim(self) -> None:
        """Delete least recently used files until the folder holds at most ``max_bytes``."""
        try:
            entries = [(e.stat().st_mtime, e.stat().st_size, Path(e.path))
                       for e in os.scandir(self.folder) if e.name.endswith(".npz")]
        except OSError:
            return
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size

    def nbytes(self) -> int:
        """Bytes the folder's embedding files take now."""
        try:
            return sum(e.stat().st_size for e in os.scandir(self.folder) if e.name.endswith(".npz"))
        except OSError:
            return 0


def store_namespace(model: Any, transform: Any, precision: str) -> str:
    """What makes two embeddings of the same slice differ: the image encoder's weights (the
    whole model's where it has no ``image_encoder``), preprocessing, precision."""
    name = getattr(transform, "name", str(transform))
    return f"{model_fingerprint(getattr(model, 'image_encoder', model))}|{name}|{precision}"
