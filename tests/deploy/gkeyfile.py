"""GLib's GKeyFile through ctypes: the parser Gst-nvinfer loads its config with, and its typed getters.

Python's configparser is not that parser: it takes `True` for a boolean, `1.0` for an integer and
keys outside any group, all of which GKeyFile refuses, so a config it accepts can still stop nvinfer.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from edgeres.deploy.nvinfer import KeyType

GLIB = "libglib-2.0.so.0"
G_KEY_FILE_NONE = 0


class GError(ctypes.Structure):
    _fields_ = [("domain", ctypes.c_uint32), ("code", ctypes.c_int), ("message", ctypes.c_char_p)]


class GKeyFileError(Exception):
    """A GKeyFile call failed; the message is GLib's."""


_KF = ctypes.c_void_p
_ERR = ctypes.POINTER(ctypes.POINTER(GError))
_SIZE = ctypes.POINTER(ctypes.c_size_t)
_STR = ctypes.c_char_p
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "g_key_file_new": (_KF, []),
    "g_key_file_free": (None, [_KF]),
    "g_key_file_load_from_file": (ctypes.c_int, [_KF, _STR, ctypes.c_int, _ERR]),
    "g_key_file_get_groups": (ctypes.POINTER(_STR), [_KF, _SIZE]),
    "g_key_file_get_keys": (ctypes.POINTER(_STR), [_KF, _STR, _SIZE, _ERR]),
    "g_key_file_get_integer": (ctypes.c_int, [_KF, _STR, _STR, _ERR]),
    "g_key_file_get_boolean": (ctypes.c_int, [_KF, _STR, _STR, _ERR]),
    "g_key_file_get_double": (ctypes.c_double, [_KF, _STR, _STR, _ERR]),
    "g_key_file_get_string": (ctypes.c_void_p, [_KF, _STR, _STR, _ERR]),
    "g_key_file_get_string_list": (ctypes.POINTER(_STR), [_KF, _STR, _STR, _SIZE, _ERR]),
    "g_key_file_get_integer_list": (ctypes.POINTER(ctypes.c_int), [_KF, _STR, _STR, _SIZE, _ERR]),
    "g_key_file_get_double_list": (ctypes.POINTER(ctypes.c_double), [_KF, _STR, _STR, _SIZE, _ERR]),
    "g_free": (None, [ctypes.c_void_p]),
    "g_strfreev": (None, [ctypes.c_void_p]),
    "g_error_free": (None, [ctypes.POINTER(GError)]),
}


@cache
def glib() -> ctypes.CDLL:
    """libglib-2.0 with the signatures used here; OSError when it is not installed."""
    library = ctypes.CDLL(GLIB)
    for name, (restype, argtypes) in _SIGNATURES.items():
        function = getattr(library, name)
        function.restype, function.argtypes = restype, argtypes
    return library


class KeyFile:
    """One loaded key file (g_key_file_load_from_file with G_KEY_FILE_NONE, as nvinfer loads its config)."""

    def __init__(self, path: Path) -> None:
        self._lib = glib()
        self._file = self._lib.g_key_file_new()
        self._call(self._lib.g_key_file_load_from_file, str(path).encode(), G_KEY_FILE_NONE)

    def close(self) -> None:
        if self._file:
            self._lib.g_key_file_free(self._file)
            self._file = None

    def __enter__(self) -> KeyFile:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, function: Callable[..., Any], *args: Any) -> Any:
        error = ctypes.POINTER(GError)()
        result = function(self._file, *args, ctypes.byref(error))
        if error:
            message = error.contents.message.decode()
            self._lib.g_error_free(error)
            raise GKeyFileError(message)
        return result

    def _strings(self, pointer: Any, length: int) -> list[str]:
        values = [pointer[index].decode() for index in range(length)]
        self._lib.g_strfreev(pointer)
        return values

    def groups(self) -> list[str]:
        length = ctypes.c_size_t()
        return self._strings(self._lib.g_key_file_get_groups(self._file, ctypes.byref(length)), length.value)

    def keys(self, group: str) -> list[str]:
        length = ctypes.c_size_t()
        pointer = self._call(self._lib.g_key_file_get_keys, group.encode(), ctypes.byref(length))
        return self._strings(pointer, length.value)

    def get(self, group: str, key: str, kind: KeyType) -> int | bool | float | str | list[Any]:
        """The value of `key` read with the getter for `kind`; GKeyFileError when GLib refuses it."""
        names = group.encode(), key.encode()
        if kind is KeyType.INTEGER:
            return int(self._call(self._lib.g_key_file_get_integer, *names))
        if kind is KeyType.BOOLEAN:
            return bool(self._call(self._lib.g_key_file_get_boolean, *names))
        if kind is KeyType.DOUBLE:
            return float(self._call(self._lib.g_key_file_get_double, *names))
        if kind is KeyType.STRING:
            pointer = self._call(self._lib.g_key_file_get_string, *names)
            text = ctypes.string_at(pointer).decode()
            self._lib.g_free(pointer)
            return text
        length = ctypes.c_size_t()
        if kind is KeyType.STRING_LIST:
            pointer = self._call(self._lib.g_key_file_get_string_list, *names, ctypes.byref(length))
            return self._strings(pointer, length.value)
        getter = self._lib.g_key_file_get_integer_list if kind is KeyType.INTEGER_LIST else None
        getter = getter or self._lib.g_key_file_get_double_list
        pointer = self._call(getter, *names, ctypes.byref(length))
        values = [pointer[index] for index in range(length.value)]
        self._lib.g_free(pointer)
        return values
