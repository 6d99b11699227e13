"""Host time of drafts whose launches go through `_launch` (the compiled kernel kept) against
Triton's own dispatch at each launch (the helper replaced by a plain kernel[grid](...)): the
back-to-back issue time, and the project's timing protocol run in this process (host / device /
wall; the hidden-work check compares the wall with 1.5 x device + 0.1 ms). The two outputs are
compared bit for bit. Then single launches: a 3-argument kernel both ways, the filters' launch,
and the device queries a draft's host code makes.

    python3 experiments/kept_launches.py OUT_DIR level1/06 level1/07 level1/11 level1/36
"""
import sys, time, json
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import torch
from experiments.drafts import load_draft, start
from experiments.host_overhead import issue_ms, protocol_ms, PLAN

PLAIN = "\n\ndef _launch(kernel, grid, *args, **kwargs):\n    kernel[grid](*args, **kwargs)\n"


def per_launch(fn, n=2000):
    for _ in range(10):
        fn()
    torch.cuda.synchronize()
    best = 1e9
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t) / n * 1e6)
        torch.cuda.synchronize()
    return best


def main() -> None:
    out = start(sys.argv[1])
    only = sys.argv[2:]
    rows = []
    for name, rules, config in PLAN:
        if not any(o in name for o in only) or config.get("CONV_TMA") is False or config.get("CONVT_TMA") is False:
            continue
        tag = name.split("/")[1][:12]
        got = {}
        for variant, edit in (("triton", lambda s: s + PLAIN), ("kept", None)):
            loaded = load_draft(name, rules, config, out / f"{tag}_{variant}.py", f"lc_{variant}", edit)
            prob, mod, cand, inputs = loaded
            with torch.no_grad():
                call = lambda: cand(*inputs)
                for _ in range(3):
                    y = call()
                torch.cuda.synchronize()
                got[variant] = y.clone()
                issue = issue_ms(call, 300)
                h, d, w = protocol_ms(call, prob, inputs, True)
            bound = 1.5 * d + 0.1
            rows.append((name, variant, issue, h, d, w, bound))
            print(f"{name} {variant}: issue {issue:.3f} ms; protocol host {h:.3f} device {d:.3f} wall {w:.3f} "
                  f"(bound {bound:.3f}: {'pass' if w <= bound else 'HELD'})", flush=True)
            if variant == "kept":
                print(f"   launches kept: {len(mod._LAUNCHES)}", flush=True)
        print(f"   bit-equal outputs: {torch.equal(got['triton'], got['kept'])}", flush=True)
    # One launch alone: a 3-argument kernel and the 24-argument operands kernel.
    name, rules, config = next(row for row in PLAN if row[0] == "level1/06_Conv2d_3x3")
    prob, mod, cand, inputs = load_draft(name, rules, config, out / "one.py", "lc_one")
    small = torch.empty(1024, device="cuda")
    w = cand.conv.weight
    with torch.no_grad():
        res = {
            "3 args, kernel[grid]": per_launch(lambda: mod._tf32_rn_copy[(1,)](small, small, 1024, BLOCK=1024)),
            "3 args, _launch": per_launch(lambda: mod._launch(mod._tf32_rn_copy, (1,), small, small, 1024, BLOCK=1024)),
            "empty(1024)": per_launch(lambda: torch.empty(1024, device="cuda")),
            "_pack_filters (_launch)": per_launch(lambda: mod._pack_filters(w, False, 1, 1, 32, True)),
            "current_device": per_launch(lambda: torch.cuda.current_device()),
            "_tma_ok": per_launch(lambda: mod._tma_ok(inputs[0])),
        }
    for k, v in res.items():
        print(f"| {k} | {v:.2f} us |", flush=True)
    (out / "rows.json").write_text(json.dumps({"rows": rows, "launch_us": res}))


if __name__ == "__main__":
    main()
