"""Decoder processes keeping each stream's newest frame in shared memory, for a GPU pipeline to take."""

# Decoder threads in the measuring process starved it: at 1080p, 32 or 128 threads each handing 3 MB frames to one
# consumer left it 0.1 to 1 batch a second (bench/gpu/run.py, 2026-12-04). Here the decoders run in processes of their
# own and write into one shared block; the consumer copies the new frames out under a sequence lock per slot.

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import Any

import numpy as np


def nv12(frame: Any) -> np.ndarray:
    """A decoded frame as one NV12 array [H*3/2, W]: what NVDEC hands over; a software frame is converted."""
    picture = frame if frame.format.name == "nv12" else frame.reformat(format="nv12")
    planes: np.ndarray = picture.to_ndarray()
    return planes


def _decode(path: str, slots: Sequence[int], block: str, shape: tuple[int, ...], sequences: Any, stop: Any,
            errors: Any, hardware: bool) -> None:
    """One decoder process: the streams of `slots`, one frame of each in turn, each file looped. PyAV is found on
    the parent's sys.path, which spawned processes inherit (also where run.py installed the bundle's wheel)."""
    import av

    memory = SharedMemory(name=block)
    containers: dict[int, Any] = {}
    try:
        frames = np.ndarray(shape, dtype=np.uint8, buffer=memory.buf)
        decoders: dict[int, Any] = {}
        while not stop.is_set():
            for slot in slots:
                if slot not in decoders:
                    options: dict[str, Any] = {}
                    if hardware:  # one per stream, as each reader thread of run.py makes its own
                        from av.codec.hwaccel import HWAccel

                        options["hwaccel"] = HWAccel(device_type="cuda", allow_software_fallback=False)
                    containers[slot] = av.open(path, format="h264", **options)
                    decoders[slot] = containers[slot].decode(video=0)
                frame = next(decoders[slot], None)
                if frame is None:  # end of the file: loop it
                    containers.pop(slot).close()
                    del decoders[slot]
                    continue
                planes = nv12(frame)
                sequences[slot] += 1  # odd: being written
                frames[slot] = planes
                sequences[slot] += 1  # even: whole
        del frames  # the view goes before the block closes
    except Exception as exc:  # reported to the consumer; this process's streams stop
        errors.put(f"{type(exc).__name__}: {exc}")
    finally:
        for container in containers.values():
            container.close()
        memory.close()


class SharedNewestFrames:
    """`streams` decoders of one H.264 file (NVDEC when `hardware`) spread over `processes` processes; each stream's
    newest frame (NV12, `height` x `width`) waits in its slot of a shared block until taken. A slot's sequence
    number is odd while its decoder writes it, so a copy that overlapped a write is detected and dropped."""

    def __init__(self, path: Path, streams: int, processes: int, width: int, height: int, *, hardware: bool
                 ) -> None:
        self.streams = streams
        self.shape = (streams, height * 3 // 2, width)
        self._memory = SharedMemory(create=True, size=int(np.prod(self.shape)))
        self.frames = np.ndarray(self.shape, dtype=np.uint8, buffer=self._memory.buf)
        context = multiprocessing.get_context("spawn")  # no fork of a process holding a CUDA context
        self._sequences = context.Array("q", streams, lock=False)
        self._stop = context.Event()
        self._errors = context.Queue()
        self._taken = [0] * streams
        self.torn = 0  # copies dropped because a decoder wrote the slot meanwhile
        count = max(1, min(processes, streams))
        self._processes = [
            context.Process(target=_decode, daemon=True, args=(
                str(path), list(range(index, streams, count)), self._memory.name, self.shape, self._sequences,
                self._stop, self._errors, hardware))
            for index in range(count)]

    @property
    def block_name(self) -> str:
        """The shared block's name (gone once finished)."""
        return self._memory.name

    def start(self) -> None:
        for process in self._processes:
            process.start()

    def decoded(self) -> int:
        """Frames decoded so far, all streams together."""
        return sum(int(s) // 2 for s in self._sequences)

    def take_new(self, copy: Callable[[int, np.ndarray], None]) -> list[int]:
        """Hands each slot holding a frame not taken yet to `copy` (slot, frame view); the slots whose copy held."""
        taken = []
        for slot in range(self.streams):
            before = self._sequences[slot]
            if before % 2 or before == self._taken[slot]:
                continue
            copy(slot, self.frames[slot])
            if self._sequences[slot] != before:
                self.torn += 1
                continue
            self._taken[slot] = before
            taken.append(slot)
        return taken

    def wait_for_frames(self, timeout_s: float) -> bool:
        """Whether every stream has a first frame within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(s >= 2 for s in self._sequences):
                return True
            if not any(p.is_alive() for p in self._processes):
                return False
            time.sleep(0.01)
        return False

    def errors(self) -> list[str]:
        found = []
        while not self._errors.empty():
            found.append(str(self._errors.get_nowait()))
        return found

    def finish(self) -> list[str]:
        """Stops the decoders and frees the block; the errors they reported."""
        self._stop.set()
        for process in self._processes:
            if process.pid is None:  # never started
                continue
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join(5)
        errors = self.errors()
        del self.frames
        self._memory.close()
        self._memory.unlink()
        return errors
