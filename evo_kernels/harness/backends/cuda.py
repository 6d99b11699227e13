"""CUDA backend: events for device time, a device-wide synchronize, L2 flush, free-memory poison."""
from __future__ import annotations

import torch

from .base import Backend, DeviceInfo, Timer, hardware_label

# Taken at import, before any candidate code runs: a candidate that replaces these attributes on
# torch.cuda does not change what the harness calls.
_Event = torch.cuda.Event
_event_record = torch.cuda.Event.record
_event_elapsed = torch.cuda.Event.elapsed_time
_synchronize = torch.cuda.synchronize


class CudaTimer(Timer):
    def __init__(self) -> None:
        self._start = _Event(enable_timing=True)
        self._stop = _Event(enable_timing=True)

    def start(self) -> None:
        _event_record(self._start)

    def stop(self) -> None:
        _event_record(self._stop)

    def elapsed_ms(self) -> float:
        return float(_event_elapsed(self._start, self._stop))


class CudaBackend(Backend):
    kind = "cuda"

    def __init__(self, device: torch.device | None = None) -> None:
        device = torch.device(device or "cuda")
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        super().__init__(device)
        torch.cuda.set_device(device)
        self._info: DeviceInfo | None = None
        self._cycles_per_ms = 0.0

    def busy_wait(self, ms: float) -> None:
        """A spinning kernel of about `ms` (calibrated once against events)."""
        sleep = getattr(torch.cuda, "_sleep", None)
        if ms <= 0 or sleep is None:
            return
        if not self._cycles_per_ms:
            timer = CudaTimer()
            sleep(1000)  # load the kernel
            timer.start()
            sleep(1_000_000)
            timer.stop()
            self.synchronize()
            self._cycles_per_ms = 1_000_000 / max(timer.elapsed_ms(), 1e-3)
        sleep(int(ms * self._cycles_per_ms))

    def synchronize(self) -> None:
        _synchronize(self.device)  # cudaDeviceSynchronize: waits for every stream of the device

    def timer(self) -> Timer:
        return CudaTimer()

    def describe(self) -> DeviceInfo:
        if self._info is None:
            p = torch.cuda.get_device_properties(self.device)
            l2 = int(getattr(p, "L2_cache_size", 0) or 0) or (50 << 20)
            self._info = DeviceInfo(kind="cuda", name=p.name, hardware=hardware_label(p.name),
                                    memory_bytes=int(p.total_memory), sm_count=int(p.multi_processor_count),
                                    l2_bytes=l2)
        return self._info

    def memory_in_use(self) -> int:
        return int(torch.cuda.memory_allocated(self.device))

    def max_memory(self) -> int:
        return int(torch.cuda.max_memory_allocated(self.device))

    def reset_peak_memory(self) -> None:
        torch.cuda.reset_peak_memory_stats(self.device)

    def memory_stats(self) -> dict[str, int]:
        return {"allocated": int(torch.cuda.memory_allocated(self.device)),
                "reserved": int(torch.cuda.memory_reserved(self.device)),
                "peak": int(torch.cuda.max_memory_allocated(self.device))}

    def collect_shared(self) -> None:
        torch.cuda.ipc_collect()

    def release_memory(self) -> None:
        self.collect_shared()  # blocks the other process mapped: freed once it let go of them
        torch.cuda.empty_cache()

    def poison_free_memory(self) -> int:
        """Fill every block the caching allocator holds free with 0xFF bytes (NaN in float types).

        A candidate returning `torch.empty(...)` then gets NaN, not a freed reference result. Each
        inactive block is requested at its exact size, which the allocator's best fit serves from
        that block (or one of equal size); all are held until every block is filled, then freed.
        """
        held = []
        total = 0
        grew = False
        for segment in torch.cuda.memory_snapshot():
            if segment.get("device") not in (None, self.device.index):
                continue
            for block in segment.get("blocks", []):
                if block.get("state") == "inactive" and block.get("size", 0) > 0:
                    reserved = torch.cuda.memory_reserved(self.device)
                    t = torch.empty(block["size"], dtype=torch.uint8, device=self.device)
                    if torch.cuda.memory_reserved(self.device) > reserved:
                        # Not served from the cache (a free small segment asked of the large pool,
                        # a block split since the snapshot): new device memory holds nothing old.
                        grew = True
                        del t
                        continue
                    t.fill_(0xFF)
                    held.append(t)
                    total += block["size"]
        del held
        if grew:  # give the new segments back at once, or each call would add more
            torch.cuda.empty_cache()
        return total
