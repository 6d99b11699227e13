"""harness/wgmma_hazards.py on SASS written for the purpose, in the two forms it is printed in:
Triton's dump (control codes, labels `LBB0:`) and nvdisasm's (addresses, `.L_x_0:`, `;`)."""
from evo_kernels.harness.wgmma_hazards import hazards

# A K loop as Triton 3.6 compiles a register-A step split in four: the A fragments of all four
# products loaded at the top, each product waited down to three in flight. At the back edge, the
# last three products still read R92, R96 and R100 when the loop's top loads them again.
LOOP = """\
--:-:-:-:1\tMOV R7, RZ;
LBB3:
--:-:0:-:3\tSYNCS.PHASECHK.TRANS64.TRYWAIT P0, [UR8+0xe020], R8;
01:-:-:-:7\t@!P0 BRA LBB1;
LBB4:
--:0:1:-:1\tLDSM.16.M88.4 R88, [R2+UR7];
--:0:2:-:1\tLDSM.16.M88.4 R92, [R4+UR7];
--:0:3:-:1\tLDSM.16.M88.4 R96, [R5+UR7];
--:0:4:-:1\tLDSM.16.M88.4 R100, [R6+UR7];
--:-:-:-:6\tBAR.SYNC.DEFER_BLOCKING 0x0;
--:-:-:-:1\tWARPGROUP.ARRIVE;
--:-:-:-:1\tHGMMA.64x64x8.F32.TF32 R24, R88, gdesc[UR8], R24, gsb0;
--:-:-:-:2\tWARPGROUP.DEPBAR.LE gsb0, 0x3;
--:-:-:-:1\tWARPGROUP.ARRIVE;
--:-:-:-:1\tHGMMA.64x64x8.F32.TF32 R24, R92, gdesc[UR8], R24, gsb0;
--:-:-:-:2\tWARPGROUP.DEPBAR.LE gsb0, 0x3;
--:-:-:-:1\tWARPGROUP.ARRIVE;
--:-:-:-:1\tHGMMA.64x64x8.F32.TF32 R24, R96, gdesc[UR8], R24, gsb0;
--:-:-:-:2\tWARPGROUP.DEPBAR.LE gsb0, 0x3;
--:-:-:-:1\tWARPGROUP.ARRIVE;
--:-:-:-:1\tHGMMA.64x64x8.F32.TF32 R24, R100, gdesc[UR8], R24, gsb0;
--:-:-:-:2\tWARPGROUP.DEPBAR.LE gsb0, 0x3;
--:0:-:-:1\t@UP0 UTMALDG.4D [UR8], [UR6];
01:-:-:-:5\t@P0 BRA LBB3;
LBB0:
--:-:-:-:2\tWARPGROUP.DEPBAR.LE gsb0, 0x0;
--:-:-:-:1\tEXIT;
LBB1:
--:-:-:-:5\tBRA LBB4;
"""


def test_a_loop_that_reloads_the_registers_of_products_in_flight_is_flagged():
    found = hazards(LOOP)
    assert sorted({h.register for h in found}) == list(range(92, 104))  # R88 was waited for; the rest not
    assert {h.line for h in found} == {7, 8, 9}
    assert all("HGMMA" in h.product and "LDSM" in h.writer for h in found)


def test_waiting_for_every_product_at_the_end_of_the_step_clears_it():
    settled = LOOP.replace("--:-:-:-:2\tWARPGROUP.DEPBAR.LE gsb0, 0x3;\n--:0:-:-:1\t@UP0",
                           "--:-:-:-:2\tWARPGROUP.DEPBAR.LE gsb0, 0x0;\n--:0:-:-:1\t@UP0")
    assert settled != LOOP
    assert hazards(settled) == []


def test_products_that_read_a_from_shared_memory_have_no_register_hazard():
    shared = LOOP
    for r in ("R88", "R92", "R96", "R100"):
        shared = shared.replace(f"R24, {r}, gdesc[UR8]", "R24, gdesc[UR10], gdesc[UR8]")
    assert hazards(shared) == []


def test_straight_line_code_and_writes_outside_the_fragments_are_not_flagged():
    straight = LOOP.replace("01:-:-:-:5\t@P0 BRA LBB3;\n", "")
    assert hazards(straight) == []
    elsewhere = LOOP.replace("LDSM.16.M88.4 R92,", "LDSM.16.M88.4 R120,").replace(
        "LDSM.16.M88.4 R96,", "LDSM.16.M88.4 R124,").replace("LDSM.16.M88.4 R100,", "LDSM.16.M88.4 R128,")
    assert hazards(elsewhere) == []


def test_a_one_register_write_inside_a_fragment_is_flagged():
    scratch = LOOP.replace("--:-:-:-:6\tBAR.SYNC", "--:-:-:-:1\tLOP3.LUT R98, R7, 0x7f800000, RZ, 0xc0, !PT;\n"
                                                   "--:-:-:-:6\tBAR.SYNC")
    assert any(h.register == 98 and h.writer.startswith("LOP3") for h in hazards(scratch))


def test_nvdisasm_form():
    nv = """\
        /*0100*/                   MOV R7, RZ ;
.L_x_3:
        /*0110*/                   LDS.128 R92, [R2+UR7] ;
        /* 0x000fe200078e00ff */
        /*0120*/                   WARPGROUP.ARRIVE ;
        /*0130*/                   HGMMA.64x64x8.F32.TF32 R24, R88, gdesc[UR8], R24, gsb0 ;
        /*0140*/                   HGMMA.64x64x8.F32.TF32 R24, R92, gdesc[UR8], R24, gsb0 ;
        /*0150*/                   WARPGROUP.DEPBAR.LE gsb0, 0x1 ;
        /*0160*/              @P0 BRA `(.L_x_3) ;
        /*0170*/                   EXIT ;
"""
    found = hazards(nv)
    assert sorted({h.register for h in found}) == [92, 93, 94, 95]


def test_a_group_is_every_product_up_to_its_marker():
    # Two products a group (a 128-row tile in two m64 halves), one group left in flight: both of
    # the last group's products still read their registers at the back edge.
    pairs = LOOP.replace("HGMMA.64x64x8.F32.TF32 R24, R88, gdesc[UR8], R24, gsb0",
                         "HGMMA.64x64x8.F32.TF32 R56, R88, gdesc[UR8], R56").replace(
        "HGMMA.64x64x8.F32.TF32 R24, R96, gdesc[UR8], R24, gsb0", "HGMMA.64x64x8.F32.TF32 R56, R96, gdesc[UR8], R56")
    pairs = pairs.replace("gsb0, 0x3", "gsb0, 0x1")
    assert sorted({h.register for h in hazards(pairs)}) == list(range(96, 104))


class _Kernel:
    def __init__(self, sass):
        self.asm = {"sass": sass}


class _Jit:  # as a Triton JITFunction holds its compiled kernels: device -> (kernels by key, ...)
    def __init__(self, *sass):
        self.device_caches = {0: ({i: _Kernel(s) for i, s in enumerate(sass)}, None)}


class _Wrapper:  # as triton.autotune holds the function it tunes
    def __init__(self, fn):
        self.fn = fn


class _Trap:
    @property
    def fn(self):
        raise AssertionError("the check ran a candidate's property")


class _TrapCaches:  # a function-like object whose compiled kernels are a property
    @property
    def device_caches(self):
        raise AssertionError("the check ran a candidate's property")


class _TrapKernel:  # a compiled kernel whose assembly is a property
    @property
    def asm(self):
        raise AssertionError("the check ran a candidate's property")


def test_a_candidate_module_is_described_by_its_hazardous_kernels():
    import types
    from evo_kernels.harness.wgmma_hazards import describe
    clean = LOOP.replace("--:-:-:-:2\tWARPGROUP.DEPBAR.LE gsb0, 0x3;\n--:0:-:-:1\t@UP0",
                         "--:-:-:-:2\tWARPGROUP.DEPBAR.LE gsb0, 0x0;\n--:0:-:-:1\t@UP0")
    mod = types.ModuleType("candidate")
    mod._good = _Jit(clean)
    mod._tuned = _Wrapper(_Wrapper(_Jit(clean, LOOP)))  # one of its two compiled configurations
    mod.trap, mod.trap_caches, mod.trap_kernel = _Trap(), _TrapCaches(), _Jit()
    mod.trap_kernel.device_caches = {0: ({0: _TrapKernel()}, None)}
    assert describe(mod).startswith("wgmma_hazard: ") and "_tuned" in describe(mod) and "_good" not in describe(mod)
    mod._tuned = _Wrapper(_Jit(clean))
    assert describe(mod) is None
    mod._bad, mod._alias = _Jit(LOOP), None
    mod._alias = mod._bad
    reason = describe(mod)
    assert "_alias" in reason and "_bad" not in reason  # one kernel, named once (the first name, sorted)


def test_kernels_held_by_the_modules_classes_are_read_too():
    import types
    from evo_kernels.harness.wgmma_hazards import describe
    mod = types.ModuleType("candidate")
    # a kernel in the model's body as a static method, another as a plain attribute; a class from
    # elsewhere (its kernels are not the candidate's) is not walked
    mod.ModelNew = type("ModelNew", (), {"__module__": "candidate", "_k": staticmethod(_Jit(LOOP)), "trap": _Trap()})
    assert describe(mod).startswith("wgmma_hazard: ") and "ModelNew._k" in describe(mod)
    mod.ModelNew = type("ModelNew", (), {"__module__": "candidate", "_k": _Wrapper(_Jit(LOOP))})
    assert "ModelNew._k" in describe(mod)
    mod.ModelNew = type("ModelNew", (), {"__module__": "torch.nn", "_k": _Jit(LOOP)})
    assert describe(mod) is None
